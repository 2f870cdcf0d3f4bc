"""Shared test set-up: quiet progress bars, results and caches in temporary folders."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

os.environ.setdefault("PRUNING_CORE_PROGRESS", "0")
# Nothing the tests run may need data that a Python install does not bring: the Debian package's
# Fashion-MNIST (and the download) stay invisible even where they exist. Notebook kernels inherit it.
os.environ["PRUNING_CORE_NO_SYSTEM_DATA"] = "1"
torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.gpu`` tests run where CUDA exists and are skipped elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_outputs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests never write into the repository's results/ or cache/."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("PRUNING_CORE_RESULTS", str(base / "results"))
    monkeypatch.setenv("PRUNING_CORE_CACHE", str(base / "cache"))


class TinyNet(nn.Module):
    """Two convs, batch-norm and a classifier: every kind of layer the masking API meets."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(x.flatten(1))


@pytest.fixture
def tiny_net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture
def one_thread() -> object:
    """Tiny tensors: one thread is faster, and steady on a shared machine (no OpenMP spinning)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
