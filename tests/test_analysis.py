"""Statistics over seeds and the transfer table, on constructed inputs with known answers."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.stats import (
    MIN_SEEDS_FOR_VERDICT,
    bh_qvalues,
    mean_ci,
    paired_t,
    spearman_ci,
)
from benchmark.analysis.transfer import (
    INCONCLUSIVE,
    NEGATIVE,
    POSITIVE,
    REFERENCE,
    cell_summary,
    comparison_arm,
    strategy_ranking,
    transfer_table,
)


def test_t_interval_matches_textbook_value():
    # n=4, mean 2.5, s = sqrt(5/3); t_{0.975,3} = 3.182446305284263
    est = mean_ci([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert est.n == 4 and est.mean == pytest.approx(2.5)
    assert (est.low, est.high) == pytest.approx((2.5 - half, 2.5 + half))


def test_no_interval_below_two_seeds_and_non_finite_values_dropped():
    one = mean_ci([0.5, float("nan")])
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.low) and not one.has_ci
    assert "no CI" in one.format()
    assert mean_ci([]).n == 0


def test_paired_t_cancels_shared_seed_noise_and_matches_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.2, size=8)  # large seed effect common to both arms
    a, b = 0.6 + shared + 0.01, 0.6 + shared
    res = paired_t(a, b)
    assert res.diff.mean == pytest.approx(0.01) and res.diff.low == pytest.approx(0.01)
    assert res.diff.high == pytest.approx(0.01) and res.p < 1e-50  # a (nearly) constant nonzero difference
    unpaired_width = mean_ci(a).high - mean_ci(a).low
    assert res.diff.high - res.diff.low < unpaired_width / 100
    d = rng.normal(0.01, 0.02, size=5)
    res = paired_t(d + 0.5, np.full(5, 0.5))
    assert res.p == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    ci = stats.ttest_1samp(d, 0).confidence_interval(0.95)
    assert (res.diff.low, res.diff.high) == pytest.approx((ci.low, ci.high))


def test_bh_qvalues_match_the_textbook_step_up():
    p = np.array([0.01, 0.04, 0.03, 0.5, np.nan])
    q = bh_qvalues(p)
    # sorted p 0.01, 0.03, 0.04, 0.5 (m = 4): 0.04, min(0.06, 0.0533), 0.0533, 0.5
    assert q[:4] == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert math.isnan(q[4])


def test_spearman_of_a_monotone_relation_is_one():
    x = np.arange(10.0)
    est = spearman_ci(x, np.exp(x))
    assert est.mean == pytest.approx(1.0) and est.n == 10
    assert spearman_ci(x, -x).mean == pytest.approx(-1.0)
    assert math.isnan(spearman_ci(x, np.ones(10)).mean)


def _runs(rows):
    cols = ["source", "target", "strategy", "strategy_label", "labels_per_class", "seed", "status", "accuracy"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["run_id"] = [f"r{i}" for i in range(len(frame))]
    return frame


def _grid(seeds=(0, 1, 2, 3, 4)):
    """scratch ≈ 0.80; 'good' source +0.05 (positive), 'bad' −0.10 (negative), 'meh' ±0.02 alternating."""
    rows = []
    for s in seeds:
        noise = 0.03 * ((s * 7) % 5 - 2)  # seed effect shared by every strategy
        rows.append((None, "tgt", "scratch", "scratch", 10, s, "ok", 0.80 + noise))
        rows.append(("good", "tgt", "finetune_full", "finetune_full", 10, s, "ok", 0.85 + noise))
        rows.append(("bad", "tgt", "finetune_full", "finetune_full", 10, s, "ok", 0.70 + noise))
        rows.append(("meh", "tgt", "finetune_full", "finetune_full", 10, s, "ok",
                     0.80 + noise + (0.02 if s % 2 else -0.02)))
    return rows


def test_ntg_sign_and_verdicts_on_a_hand_built_grid():
    table = transfer_table(_runs(_grid())).set_index("source")
    assert table.loc["bad", "ntg_mean"] == pytest.approx(0.10)
    assert table.loc["bad", "gain_mean"] == pytest.approx(-0.10)
    assert table.loc["bad", "verdict"] == NEGATIVE
    assert table.loc["good", "ntg_mean"] == pytest.approx(-0.05)
    assert table.loc["good", "verdict"] == POSITIVE
    assert table.loc["meh", "ntg_low"] < 0 < table.loc["meh", "ntg_high"]
    assert table.loc["meh", "verdict"] == INCONCLUSIVE
    assert (table["n_pairs"] == 5).all()


def test_gain_is_paired_by_seed_and_unpaired_seeds_do_not_count():
    rows = _grid(seeds=(0, 1, 2))
    rows.append(("bad", "tgt", "finetune_full", "finetune_full", 10, 9, "ok", 0.1))  # no scratch seed 9
    rows.append((None, "tgt", "scratch", "scratch", 10, 1, "diverged", None))
    table = transfer_table(_runs(rows)).set_index("source")
    assert table.loc["bad", "n_pairs"] == 3
    assert table.loc["bad", "acc"].n == 4


def test_fewer_than_five_seeds_are_called_out_not_judged():
    assert MIN_SEEDS_FOR_VERDICT == 5
    for seeds in ((0,), (0, 1, 2), (0, 1, 2, 3)):
        table = transfer_table(_runs(_grid(seeds=seeds)))
        n = len(seeds)
        assert list(table["verdict"]) == [f"too few seeds (n={n} < 5)"] * 3, seeds
        assert table["q_value"].isna().all() and table["p_value"].isna().all()
    # The "bad" source is 0.10 worse on every seed: clear, but 3 seeds are not enough for a verdict
    # by default; a caller may lower the bar explicitly.
    lowered = transfer_table(_runs(_grid(seeds=(0, 1, 2))), min_seeds=3).set_index("source")
    assert lowered.loc["bad", "verdict"] == NEGATIVE


def test_cell_summary_counts_diverged_and_failed_runs():
    rows = _grid(seeds=(0, 1))
    rows.append(("bad", "tgt", "finetune_full", "finetune_full", 10, 2, "diverged", None))
    rows.append(("bad", "tgt", "finetune_full", "finetune_full", 10, 3, "failed", None))
    cells = cell_summary(_runs(rows)).set_index("source")
    assert cells.loc["bad", "n"] == 2 and cells.loc["bad", "n_runs"] == 4
    assert cells.loc["bad", "n_diverged"] == 1 and cells.loc["bad", "n_failed"] == 1


def test_strategy_ranking_overall_and_per_budget():
    rows = []
    for s in (0, 1):
        for lpc, (scr, lp, ft) in {1: (0.3, 0.5, 0.4), 100: (0.9, 0.7, 0.95)}.items():
            rows.append((None, "t", "scratch", "scratch", lpc, s, "ok", scr))
            for src in ("a", "b"):
                rows.append((src, "t", "linear_probe", "linear_probe", lpc, s, "ok", lp))
                rows.append((src, "t", "finetune_full", "finetune_full", lpc, s, "ok", ft))
    runs = _runs(rows)
    per_budget = strategy_ranking(runs, by_budget=True).set_index(["labels_per_class", "strategy_label"])
    assert per_budget.loc[(1, "linear_probe"), "mean_rank_value"] == 1.0
    assert per_budget.loc[(1, "scratch"), "mean_rank_value"] == 3.0
    assert per_budget.loc[(100, "finetune_full"), "wins"] == 2
    assert per_budget.loc[(100, "finetune_full"), "n_problems"] == 2
    overall = strategy_ranking(runs).set_index("strategy_label")
    assert overall.loc["finetune_full", "mean_rank_value"] == pytest.approx(1.5)
    assert overall.loc["scratch", "mean_rank_value"] == pytest.approx(2.5)
    assert overall.loc["finetune_full", "n_problems"] == 4


def test_analysis_and_report_never_import_jax():
    code = ("import sys, benchmark.analysis.transfer, benchmark.analysis.gap, "
            "benchmark.analysis.transferability, benchmark.report.html, benchmark.report.plots, "
            "benchmark.commands.report; bad = [m for m in sys.modules if m == 'jax' or "
            "m.startswith(('jax.', 'flax', 'optax'))]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_accuracy_intervals_stay_within_zero_and_one():
    rows = [(None, "t", "scratch", "scratch", 10, s, "ok", acc) for s, acc in enumerate((0.99, 0.90, 1.0))]
    rows += [("a", "t", "finetune_full", "finetune_full", 10, s, "ok", acc) for s, acc in enumerate((0.99, 0.9, 1.0))]
    cell = cell_summary(_runs(rows)).set_index("strategy_label").loc["scratch"]
    assert cell["acc_high"] == 1.0 and cell["acc_low"] < cell["acc_mean"] < 1.0
    row = transfer_table(_runs(rows)).iloc[0]
    assert row["acc"].high == 1.0 and row["scratch_acc"].high == 1.0


def test_a_raw_interval_excluding_zero_is_no_verdict_when_its_q_value_is_not_below_005():
    # NTG per seed 0.01, 0.03, 0.005, 0.04, 0.02: paired t p = 0.031, CI wholly above 0.
    ntg = (0.01, 0.03, 0.005, 0.04, 0.02)
    rows = [(None, "t", "scratch", "scratch", 10, s, "ok", 0.8) for s in range(5)]
    rows += [("a", "t", "finetune_full", "finetune_full", 10, s, "ok", 0.8 - d) for s, d in enumerate(ntg)]
    alone = transfer_table(_runs(rows)).iloc[0]
    assert alone["p_value"] == pytest.approx(0.0305, abs=1e-4) and alone["ntg_low"] > 0
    assert alone["q_value"] == pytest.approx(alone["p_value"]) and alone["verdict"] == NEGATIVE
    # Nine more sources with no effect (NTG ±0.01 around 0): among ten verdicts, q = 10 · 0.031 / 1.
    for k in range(9):
        rows += [(f"null{k}", "t", "finetune_full", "finetune_full", 10, s, "ok", 0.8 + d)
                 for s, d in enumerate((0.01, -0.01, 0.02, -0.02, 0.0))]
    table = transfer_table(_runs(rows)).set_index("source")
    assert table.loc["a", "ntg_low"] > 0 and table.loc["a", "p_value"] < 0.05
    assert table.loc["a", "q_value"] == pytest.approx(min(1.0, 10 * alone["p_value"]))
    assert table.loc["a", "verdict"] == INCONCLUSIVE


def test_source_only_is_a_reference_row_never_a_transfer_verdict():
    assert comparison_arm("source_only", {}) is None and comparison_arm("scratch", {}) is None
    assert comparison_arm("finetune_full", {}) == comparison_arm("dann", {"domain_weight": 1.0}) == "scratch"
    rows = [(None, "t", "scratch", "scratch", 10, s, "ok", 0.9) for s in range(5)]
    rows += [("a", "t", "source_only", "source_only", 10, s, "ok", 0.3 + 0.01 * s) for s in range(5)]
    row = transfer_table(_runs(rows)).iloc[0]
    assert row["verdict"] == REFERENCE and "no target labels" in row["verdict_note"]
    assert row["n_pairs"] == 0 and math.isnan(row["gain_mean"]) and math.isnan(row["q_value"])
    assert row["acc"].n == 5


def test_imagenet_cells_pair_with_the_same_net_trained_from_a_random_init():
    """suites/pretrained.yaml: scratch is the net with ``pretrained: none``; an ImageNet cell's arm
    is that scratch, not a missing ``pretrained: imagenet`` scratch (which the grid never builds);
    a different width is still a different arm."""
    def config(pretrained, width=1.0):
        return {"cell": {"input_spec": {"height": 64}, "backbone": "efficientnet_lite0",
                         "backbone_params": {"pretrained": pretrained, "width": width},
                         "train": {"steps": 64}}}

    rows, configs = [], []
    for s in range(5):
        noise = 0.02 * ((s * 3) % 5 - 2)
        rows.append((None, "tgt", "scratch", "scratch", 10, s, "ok", 0.70 + noise))
        configs.append(config("none"))
        rows.append(("imagenet", "tgt", "linear_probe", "linear_probe", 10, s, "ok", 0.76 + noise))
        configs.append(config("imagenet"))
        rows.append(("imagenet", "tgt", "finetune_full", "finetune_full", 10, s, "ok", 0.75 + noise))
        configs.append(config("imagenet", width=2.0))
    runs = _runs(rows)
    runs["config"] = configs
    table = transfer_table(runs).set_index("strategy_label")
    assert table.loc["linear_probe", "n_pairs"] == 5
    assert table.loc["linear_probe", "gain_mean"] == pytest.approx(0.06)
    assert table.loc["linear_probe", "verdict"] == POSITIVE
    assert table.loc["finetune_full", "n_pairs"] == 0
