"""The DQN settings pilot of notebooks 02/03 runs on pilot seeds and writes its learning curves."""

from __future__ import annotations

import pandas as pd
import pytest

from pruning_core.config import results_root
from pruning_core.studies.purl_pilot import CANDIDATES, PILOT_SEEDS, run_pilot


def test_pilot_seeds_are_never_study_seeds() -> None:
    from pruning_core.studies.purl import purl_study_sizes

    for profile in ("smoke", "cpu"):
        study = set(purl_study_sizes("resnet50", profile, device="cpu").seeds)
        assert not study & set(PILOT_SEEDS)


@pytest.mark.slow
def test_pilot_writes_one_greedy_evaluation_per_eval_point() -> None:
    out = run_pilot("resnet50", {"5-step": CANDIDATES["5-step"]}, episodes=2, eval_every=1,
                    profile="smoke", workers=0)  # fmt: skip
    assert list(out["episode"]) == [0, 1, 2]
    assert (out["seed"] == PILOT_SEEDS[0]).all()
    assert out["sparsity"].between(0, 1).all() and out["reward_top1"].between(0, 1).all()
    assert (out["meets_a_star"] == (out["reward_top1"] >= out["a_star"])).all()
    assert out["greedy_return"].le(0).all()  # PuRL's reward is never positive
    written = pd.read_csv(results_root() / "smoke" / "pilots" / "purl_dqn_resnet50.csv")
    assert len(written) == 3
