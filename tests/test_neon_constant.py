"""The constant-policy yardstick of notebook 04 (:mod:`pruning_core.studies.neon_constant`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pruning_core.studies.neon import METHODS, STRUCTURAL
from pruning_core.studies.neon_constant import (
    TRAIN_COLUMNS,
    YARDSTICKS,
    choose_by_return,
    cluster_compare,
    oracle_choice,
    schedule_actions,
    yardstick_summary,
)


def _outcomes(returns: dict[str, list[float]], C: float = 1.0) -> pd.DataFrame:
    """One row per (network, schedule) at ``C``, with test columns that disagree on purpose."""
    rows = []
    for s, rs in returns.items():
        for i, r in enumerate(rs):
            rows.append({"dataset": f"d{i}", "net": 0, "schedule": s, "C": C, "return": r,
                         "test_acc": 1.0 - r / 1e6, "compression": 1.0 + i})  # fmt: skip
    return pd.DataFrame(rows)


def test_schedule_actions_repeats_each_pass_over_the_layers() -> None:
    assert schedule_actions((4, 3, 0, 1), 2) == [4, 4, 3, 3, 0, 0, 1, 1]
    assert schedule_actions((2,) * 4, 3) == [2] * 12


def test_constant_is_the_argmax_of_the_mean_training_return() -> None:
    # per-network returns: 2222 wins on the mean although 4444 wins on two of three networks
    out = _outcomes({"0000": [0, 0, 0], "2222": [50, 60, 70], "4444": [100, 90, -500]})
    cands = [(0,) * 4, (2,) * 4, (4,) * 4]
    chosen, scores = choose_by_return(out, 1.0, cands)
    assert chosen == (2, 2, 2, 2)
    assert scores["2222"] == pytest.approx(60.0)
    assert scores["4444"] == pytest.approx(-310 / 3)
    # other C rows are ignored
    other = _outcomes({"4444": [1e9, 1e9, 1e9]}, C=5.0)
    assert choose_by_return(pd.concat([out, other]), 1.0, cands)[0] == (2, 2, 2, 2)


def test_selection_never_reads_the_test_columns() -> None:
    out = _outcomes({"1111": [10, 10], "3333": [20, 20]})
    flipped = out.assign(test_acc=out["test_acc"][::-1].to_numpy(), compression=99.0)
    cands = [(1,) * 4, (3,) * 4]
    assert choose_by_return(out, 1.0, cands) == choose_by_return(flipped, 1.0, cands)
    assert choose_by_return(out[list(TRAIN_COLUMNS)], 1.0, cands)[0] == (3, 3, 3, 3)


def test_ties_keep_the_current_schedule() -> None:
    out = _outcomes({"3333": [5, 5], "0333": [5, 5], "4333": [1, 1]})
    cands = [(0, 3, 3, 3), (3, 3, 3, 3), (4, 3, 3, 3)]
    assert choose_by_return(out, 1.0, cands, current=(3, 3, 3, 3))[0] == (3, 3, 3, 3)
    assert choose_by_return(out, 1.0, cands)[0] == (0, 3, 3, 3)


def test_oracle_is_chosen_on_the_reward_split_never_on_test() -> None:
    o = pd.DataFrame(
        {"schedule": ["0000", "1111", "2222", "3333"], "C": 1.0,
         "compression": [1.0, 2.0, 4.0, 8.0], "delta_val_pp": [0.0, -0.4, -0.9, -3.0],
         "test_acc": [0.5, 0.9, 0.1, 0.99]}
    )  # fmt: skip
    assert oracle_choice(o, 1.0, 0.5)["schedule"] == "2222"  # 3333 is best on test, not within C
    assert (
        oracle_choice(o.assign(C=0.0), 0.0, 0.5)["schedule"] == "1111"
    )  # the noise margin counts as within
    assert oracle_choice(o.assign(C=5.0), 5.0, 0.5)["schedule"] == "3333"
    with pytest.raises(ValueError, match="keep-everything"):
        oracle_choice(o[o["schedule"] == "3333"], 1.0, 0.5)


def _results() -> pd.DataFrame:
    """Two datasets with two networks each and one with one; NEON ties the constant except on
    dataset a."""
    rows = []
    nets = [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("c", 0)]
    for j, (d, i) in enumerate(nets):
        for m, comp, delta, acts in (
            ("neon", 4.0 if d == "a" else 2.0, -2.0 if d == "a" else -0.5, "4444" if d == "a"
             else "2222"),
            ("neon_guard", 2.0, 0.0, "2222"),
            ("constant", 2.0, -0.5, "2222"),
            ("constant_guard", 2.0, 0.0, "2222"),
            ("schedule", 2.0, -0.5, "2202"),
            ("oracle_constant", 3.0, -0.2, "3333"),
        ):  # fmt: skip
            rows.append({"fold": j % 2, "dataset": d, "net": i, "method": m, "C": 1.0,
                         "compression": comp, "delta_test_pp": delta, "actions": acts})  # fmt: skip
    return pd.DataFrame(rows)


def test_cluster_compare_pairs_by_network_and_counts_datasets() -> None:
    res = cluster_compare(_results(), "neon", "constant", 1.0)
    assert res["n_networks"] == 5 and res["n_datasets"] == 3
    assert res["compression_ratio"] == pytest.approx((4 * 2 + 2 * 3) / 5 / 2.0)
    assert res["delta_pp"] == pytest.approx((-1.5 * 2) / 5)
    lo, hi = res["compression_ratio_ci95"]
    assert 1.0 <= lo <= res["compression_ratio"] <= hi <= 2.0
    # the t-test has one mean per dataset: differences (-1.5, 0, 0)
    assert res["p"] == pytest.approx(0.4226, abs=1e-3)
    tie = cluster_compare(_results(), "neon_guard", "constant_guard", 1.0)
    assert tie["compression_ratio"] == 1.0 and tie["delta_pp"] == 0.0 and tie["p"] == 1.0


def test_yardstick_summary_has_every_key_per_C() -> None:
    choices = pd.DataFrame([{"fold": k, "C": 1.0, "constant": "2222", "keep": 0.8,
                             "schedule": "2202", "schedule_keep": "0.8-0.8-1-0.8"}
                            for k in (0, 1)])  # fmt: skip
    s = yardstick_summary(_results(), choices, (1.0,))
    assert set(s) == {"constant_schedule", "neon_vs_constant", "distinct_policies", "share_over_C"}
    cs = s["constant_schedule"]["1"]
    assert cs["keep"] == {"fold0": 0.8, "fold1": 0.8}
    assert cs["compression"] == 2.0 and cs["delta_pp"] == -0.5
    assert cs["oracle_constant_compression"] == 3.0
    vs = s["neon_vs_constant"]["1"]
    assert {"compression_ratio", "compression_ratio_ci95", "delta_pp", "delta_pp_ci95", "p",
            "guard", "schedule"} <= set(vs)  # fmt: skip
    assert s["distinct_policies"]["1"]["neon"]["n_distinct"] == 2
    assert s["distinct_policies"]["1"]["neon_guard"]["n_distinct"] == 1
    assert s["distinct_policies"]["1"]["neon"]["n_constant_strings"] == 5
    share = s["share_over_C"]["1"]
    assert share["unguarded"] == pytest.approx(2 / 5) and share["guarded"] == 0.0
    assert np.isfinite(share["constant"])


def test_yardsticks_are_methods_of_the_tables() -> None:
    assert set(YARDSTICKS) <= set(METHODS)
    assert all(STRUCTURAL[m] for m in YARDSTICKS)
    assert METHODS.index("neon_guard") < METHODS.index("constant") < METHODS.index("uniform")


def test_cached_outcomes_load_back_with_weights_only(tmp_path: Path) -> None:
    from pruning_core.runs import save_checkpoint
    from pruning_core.studies.neon_constant import _load

    df = pd.DataFrame({"schedule": ["4444", "0000"], "C": [1.0, 1.0], "return": [3.5, 0.0],
                       "guard": [False, False], "params_pruned": [10, 20]})  # fmt: skip
    path = tmp_path / "x.pt"
    assert _load(path) is None
    save_checkpoint(path, df.to_dict(orient="list"))
    pd.testing.assert_frame_equal(_load(path), df)
    with pytest.raises(TypeError, match="DataFrame"):
        save_checkpoint(path, df)  # refused at the write: it would not load back
    import io

    import torch

    from pruning_core.runs import write_verified

    buf = io.BytesIO()
    torch.save(df, buf)  # a file written before that check: refused on load, rebuilt, not used
    write_verified(path, buf.getvalue())
    assert _load(path) is None
