"""Suite → runs: which cells exist, which are skipped and why, and stable content ids."""

from __future__ import annotations

import dataclasses

from test_config import SUITE

from benchmark.cellspec import ALL_LABELS, cell_id, run_id
from benchmark.config import resolve_suite
from benchmark.grid import _same_images, build_grid, group_by_cell


def grid_of(**changes):
    return build_grid(resolve_suite({**SUITE, **changes}, file="g.yaml"))


def test_scratch_ignores_sources_and_sourced_strategies_multiply_by_them():
    grid = grid_of(sources=["font_digits", "font_digits_m"], targets=["uci_digits", "uci_digits_m"],
                   labels_per_class=[5], seeds=[3, 7])
    scratch = [r for r in grid.runs if r.spec.strategy == "scratch"]
    partial = [r for r in grid.runs if r.spec.strategy == "finetune_partial"]
    assert {r.spec.source for r in scratch} == {None}
    assert len(scratch) == 2 * 2  # targets × seeds
    assert len(partial) == 2 * 2 * 2  # sources × targets × seeds
    assert {(r.spec.source, r.spec.target) for r in partial} == {
        (s, t) for s in ("font_digits", "font_digits_m") for t in ("uci_digits", "uci_digits_m")}
    assert all(r.spec.pretrain == {} for r in scratch) and all(r.spec.pretrain for r in partial)
    assert len(grid.cells) == 2 + 4 and all(len(runs) == 2 for _, runs in grid.cells)
    assert grid.skipped == ()


def test_run_ids_are_content_addresses():
    grid = grid_of()
    again = grid_of(description="another description")
    assert [r.run_id for r in grid.runs] == [r.run_id for r in again.runs]
    assert len({r.run_id for r in grid.runs}) == len(grid.runs)
    for run in grid.runs:
        assert run.run_id == run_id(run.spec, run.seed) and run.cell_id == cell_id(run.spec)
    longer = grid_of(train={**SUITE["train"], "steps": 64})
    assert not {r.run_id for r in grid.runs} & {r.run_id for r in longer.runs}
    # Pretraining changes sourced cells only: scratch runs keep their ids (and stored results).
    other_pretrain = grid_of(pretrain={**SUITE["pretrain"], "steps": 80})
    same = {r.run_id for r in grid.runs} & {r.run_id for r in other_pretrain.runs}
    assert same == {r.run_id for r in grid.runs if r.spec.strategy == "scratch"}


def test_same_images_are_skipped_unless_all_labels_or_disjoint_classes():
    grid = grid_of(sources=["uci_digits@rotate=45"], labels_per_class=[5, "all"])
    partial = [spec for spec, _ in grid.cells if spec.strategy == "finetune_partial"]
    assert [s.labels_per_class for s in partial] == [ALL_LABELS]
    (skip,) = grid.skipped
    assert (skip.source, skip.target, skip.labels_per_class) == ("uci_digits@rotate=45", "uci_digits", 5)
    assert "same images (uci_digits)" in skip.reason
    assert _same_images("mnist", "mnist_corrupted/fog")
    assert not _same_images("fashion_mnist@classes=0-4", "fashion_mnist@classes=5-9")
    assert _same_images("fashion_mnist@classes=0-5", "fashion_mnist@classes=5-9")
    assert not _same_images("uci_digits_m", "uci_digits")


def test_budget_zero_keeps_only_unsupervised_adaptation():
    grid = grid_of(strategies=["scratch", "linear_probe", "dann", "self_training"], labels_per_class=[0])
    kept = {r.spec.strategy for r in grid.runs}
    assert kept == {"dann", "self_training"}
    assert {(s.strategy_label, s.reason) for s in grid.skipped} == {
        ("scratch", "scratch needs at least 1 target label(s) per class"),
        ("linear_probe", "linear_probe needs at least 1 target label(s) per class"),
    }


def test_source_only_needs_shared_classes():
    grid = grid_of(strategies=["source_only"], sources=["font_digits", "fashion_mnist"],
                   labels_per_class=[0])
    assert [(r.spec.source, r.spec.labels_per_class) for r in grid.runs] == [("font_digits", 0)] * 2
    (skip,) = grid.skipped
    assert skip.source == "fashion_mnist" and "predicts with the source's classes" in skip.reason


def test_group_by_cell_keeps_grid_order():
    grid = grid_of()
    shuffled = list(reversed(grid.runs))
    groups = group_by_cell(shuffled)
    assert [spec for spec, _ in groups] == [spec for spec, _ in reversed(grid.cells)]
    assert all(dataclasses.is_dataclass(spec) for spec, _ in groups)
