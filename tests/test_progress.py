"""The one progress-bar helper: coarse updates where its stream is not a terminal."""

from __future__ import annotations

import io

from pruning_core import config
from pruning_core.config import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_update_rarely_when_not_on_a_terminal() -> None:
    """An executed notebook keeps every update as an output fragment (02 saved 1,378 at 2 s)."""
    with progress(range(3), file=io.StringIO(), disable=False) as bar:
        assert bar.mininterval >= 30
        assert bar.mininterval == getattr(config, "PROGRESS_INTERVAL_NOT_TTY", None)
        assert bar.maxinterval >= bar.mininterval  # tqdm's monitor thread must not refresh sooner
    with progress(range(3), file=_Terminal(), disable=False) as bar:
        assert bar.mininterval == 2.0
    with progress(range(3), file=io.StringIO(), disable=False, mininterval=0.5) as bar:
        assert bar.mininterval == 0.5  # the caller's choice wins


def test_bars_write_little_to_a_file() -> None:
    out = io.StringIO()
    for _ in progress(range(2000), file=out, disable=False, desc="work"):
        pass
    assert out.getvalue().count("\r") <= 3  # the first and the final state only
