"""The PuRL figures of notebooks 02 and 03 show every method: no line hidden under another,
rows labelled with their sparsity, every band in a legend."""

from __future__ import annotations

import pandas as pd

from pruning_core.figures.purl import plot_curve, plot_paired, plot_per_layer


def _curve(targets: tuple[float, ...]) -> pd.DataFrame:
    rows = []
    for t in targets:
        for m, top1, s in [("PuRL", 77.6, t), ("global one-shot", 77.1, t), ("random search", 76.7, t - 0.1),
                           ("dense + fine-tuning", 78.6, 0.0)]:  # fmt: skip
            rows.append({"method": m, "target": t, "n": 5, "sparsity": s, "sparsity_lo": s - 0.05,
                         "sparsity_hi": s + 0.05, "top1_pct": top1, "top1_lo": top1 - 2,
                         "top1_hi": top1 + 2})  # fmt: skip
    return pd.DataFrame(rows)


def test_per_layer_gives_each_pruning_method_its_own_panel() -> None:
    rows = [{"method": m, "seed": 0, "target": 0.8, "position": i, "layer": f"l{i}", "sparsity": s}
            for m, s in [("PuRL", 0.8), ("global one-shot", 0.7), ("gradual (cubic)", 0.7),
                         ("dense + fine-tuning", 0.0)] for i in range(4)]  # fmt: skip
    fig = plot_per_layer(pd.DataFrame(rows), "t")
    names = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert names == ["PuRL", "global one-shot", "gradual (cubic)"]  # the unpruned control has none


def test_accuracy_is_a_row_per_method_labelled_with_its_sparsity_one_panel_per_target() -> None:
    fig = plot_curve(_curve((0.8,)), 0.786, "t", test_se_pp=0.4)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "random search  (70.0% sparse)" in labels and len(labels) == 4
    assert "dense ± 1 test standard error" in [t.get_text() for t in fig.legends[0].get_texts()]
    fig = plot_curve(_curve((0.7, 0.8, 0.9)), 0.786, "t")
    assert [ax.get_title() for ax in fig.axes] == ["S* = 0.7", "S* = 0.8", "S* = 0.9"]
    assert "PuRL  (90.0% sparse)" in [t.get_text() for t in fig.axes[2].get_yticklabels()]


def test_paired_rows_name_both_sparsities_and_the_band() -> None:
    paired = pd.DataFrame({"target": [0.8], "baseline": ["random search"], "purl_sparsity": [0.849],
                           "baseline_sparsity": [0.701], "purl_minus_baseline_pp": [0.9],
                           "ci_low": [-2.7], "ci_high": [4.6]})  # fmt: skip
    ax = plot_paired(paired, "t", test_se_pp=0.4).axes[0]
    assert "70.1% vs PuRL 84.9% sparse" in ax.get_yticklabels()[0].get_text()
    assert "± 1 test standard error" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_search_curves_show_where_the_searches_ended_and_the_constant_policy() -> None:
    from pruning_core.figures.purl import plot_search

    log = pd.DataFrame([{"episode": e, "return": -e, "final_sparsity": 0.5, "final_accuracy": 0.4,
                         "method": m, "seed": s} for e in (1, 2, 3) for m in ("PuRL", "random search")
                        for s in (0, 1)])  # fmt: skip
    rows = pd.DataFrame([{"method": m, "seed": s, "reward_sparsity_search": 0.8, "reward_top1_search": 0.6}
                         for m in ("PuRL", "random search", "best uniform alpha") for s in (0, 1)])  # fmt: skip
    fig = plot_search(log, "t", rows)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["best uniform alpha (constant policy)", "PuRL greedy after the search",
                      "random search's choice"]  # fmt: skip
