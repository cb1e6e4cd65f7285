"""Domain-gap and transferability measures of (source, target) pairs, computed before training.

A pair's measures depend on the source and target datasets and on the pretrained source model
(``input_spec``, ``backbone``, ``backbone_params``, ``pretrain``, seed) — not on the strategy or
the label budget. :func:`pair_measures` computes them for one pair and seed:

* ``space="features"``: the source model's penultimate features of ≤ ``MAX_IMAGES`` source
  train images and ≤ ``MAX_IMAGES`` target train images → :func:`benchmark.analysis.gap.domain_gap`
  (proxy A-distance, MMD², Fréchet distance); on the same target images with their labels,
  LEEP and NCE from the source softmax (the source label space may differ from the target's:
  both scores only need P(z | x) over the source classes), LogME and H-score from the features
  (:mod:`benchmark.analysis.transferability`).
* ``space="pixels"``: :func:`benchmark.analysis.gap.pixel_gap` on the same images (model-free).

Only TRAIN splits are read — never target test data. The target labels used by the
transferability scores are those of the subsampled target train images (up to ``MAX_IMAGES``,
whatever a cell's label budget): a pair-level property, never fed back into any run.
Subsampling is deterministic: ``numpy.random.default_rng((seed, side))`` without replacement.
``linear_cka`` needs paired representations of the same images, so it is not computed here.

For ``tbench predict`` (:func:`record_prediction_scores`, same table): :func:`baseline_measures`
adds per label budget ``K`` the scores ``NAME_lpcK`` computed from that budget alone (the images
and labels a run of the seed gets, split 80/20 as the engine splits it): k-NN leave-one-out and
validation-probe accuracy on source features and on pixels, LEEP, LogME, NCE and H-score; and
``space="data"`` facts: label-set overlap, log10 of the source's train size.

:func:`record_suite_measures` is the glue ``tbench run`` calls after a grid: one measure set per
distinct (source, target, seed) of source-using cells whose runs are finished in the store and
whose measures the store lacks. The store keys measures by (source, target, measure, space,
seed); the model they were measured with (input spec, backbone, its params, pretraining schedule)
is kept in each row's ``config``, and a stored row counts as done only for that model: a suite
that changes its backbone and keeps its store gets its measures recomputed (and replaced), never
the stale ones of the old model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from benchmark.analysis.gap import domain_gap, pixel_gap
from benchmark.analysis.transferability import h_score, leep, logme, nce
from benchmark.cellspec import CellSpec
from benchmark.pretrained.sources import is_pretrained

BLAS_THREADS = 1
"""BLAS threads for the measures' numpy/scikit-learn work. The matrices are small (≤ 1000 × 784);
with OpenBLAS's default threads on a loaded 2-core machine the pixel gap took 20 s instead of
0.8 s (``python -m benchmark.measures`` compares both)."""

MAX_IMAGES = 1000
"""At most this many train images per side (MMD is O(N²); LogME/H-score need N ≫ D only)."""

FEATURE_MEASURES = ("proxy_a_distance", "mmd2_rbf", "frechet_distance", "leep", "logme", "nce", "h_score")
PIXEL_MEASURES = ("proxy_a_distance", "mmd2_rbf", "frechet_distance")
EXPECTED = tuple(("features", m) for m in FEATURE_MEASURES) + tuple(("pixels", m) for m in PIXEL_MEASURES)
"""Every (space, measure) one pair and seed gets."""


def subsample_indices(n: int, max_images: int, seed: int, side: int) -> np.ndarray:
    """Sorted indices int64[min(n, max_images)] into ``n`` examples, from ``(seed, side)`` only."""
    if n <= max_images:
        return np.arange(n)
    return np.sort(np.random.default_rng((int(seed), int(side))).choice(n, size=max_images, replace=False))


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _safe(fn: Callable[..., float], *args: Any) -> float | None:
    """A measure's value, or ``None`` when the inputs make it undefined (e.g. a diverged source
    model's non-finite features): a missing value in the store, not a failed suite."""
    if any(not np.all(np.isfinite(a)) for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"):
        return None
    try:
        return _finite(fn(*args))
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None


def pair_config(spec: CellSpec, n_source: int, n_target: int) -> dict[str, Any]:
    """What the measures of ``spec``'s pair depend on besides the datasets (stored with each row)."""
    from benchmark.config.schedule import resolve_pretrain

    return {"input_spec": dataclasses.asdict(spec.input_spec), "backbone": spec.backbone,
            "backbone_params": dict(spec.backbone_params), "pretrain": resolve_pretrain(spec.pretrain),
            "n_source": int(n_source), "n_target": int(n_target), "split": "train"}


def model_of(config: dict[str, Any] | None) -> tuple | None:
    """The part of a stored ``pair_config`` that names the model: what makes a measure stale."""
    if not config:
        return None
    keys = ("input_spec", "backbone", "backbone_params", "pretrain")
    return tuple(json.dumps(config.get(k), sort_keys=True, default=str) for k in keys)


def pair_measures(spec: CellSpec, seed: int, *, data_dir: str | os.PathLike | None = None,
                  checkpoint_dir: str | os.PathLike | None = None,
                  max_images: int = MAX_IMAGES) -> list[dict[str, Any]]:
    """Measure rows for ``spec``'s (source, target) pair and ``seed``'s pretrained source model.

    spec: any CellSpec naming ``source``, ``target``, ``input_spec``, ``backbone``,
    ``backbone_params``, ``pretrain`` (strategy and budget are ignored). Returns rows with the
    keys of ``Store.record_measures``: ``source, target, measure, value (float | None), space,
    seed, config`` — ``EXPECTED`` in order. Raises ``UserError`` for unknown datasets.
    """
    from benchmark.data import load
    from benchmark.engine import source_features
    from benchmark.engine.malloc import keep_freed_buffers
    from benchmark.errors import UserError

    keep_freed_buffers()  # may pretrain the source model: tune glibc first (engine/malloc.py)
    if not spec.source:
        raise UserError(f"domain-gap measures need a source dataset; the cell {spec.strategy_label} "
                        f"-> {spec.target} has none", field="source")
    source = load(spec.source, split="train", spec=spec.input_spec, data_dir=data_dir)
    target = load(spec.target, split="train", spec=spec.input_spec, data_dir=data_dir)
    si = subsample_indices(len(source.images), max_images, seed, side=0)
    ti = subsample_indices(len(target.images), max_images, seed, side=1)
    src_images, tgt_images = source.images[si], target.images[ti]
    tgt_labels = np.asarray(target.labels[ti], np.int64)

    kwargs = {"data_dir": data_dir, "checkpoint_dir": checkpoint_dir}
    src_feat, _ = source_features(spec, seed, src_images, **kwargs)
    tgt_feat, tgt_probs = source_features(spec, seed, tgt_images, **kwargs)
    src_feat, tgt_feat = src_feat.astype(np.float64), tgt_feat.astype(np.float64)
    tgt_probs = tgt_probs.astype(np.float64)

    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        if np.all(np.isfinite(src_feat)) and np.all(np.isfinite(tgt_feat)):
            gap_values = domain_gap(src_feat, tgt_feat, seed=seed)
            gap: dict[str, float | None] = {k: _finite(v) for k, v in gap_values.items()}
        else:
            gap = dict.fromkeys(PIXEL_MEASURES)
        features = {**gap,
                    "leep": _safe(leep, tgt_probs, tgt_labels),
                    "logme": _safe(logme, tgt_feat, tgt_labels),
                    "nce": _safe(nce, tgt_probs, tgt_labels),
                    "h_score": _safe(h_score, tgt_feat, tgt_labels)}
        pixels = pixel_gap(src_images, tgt_images, seed=seed)
    config = pair_config(spec, len(si), len(ti))
    values = {("features", m): features[m] for m in FEATURE_MEASURES}
    values.update({("pixels", m): _finite(pixels[m]) for m in PIXEL_MEASURES})
    return [{"source": spec.source, "target": spec.target, "measure": m, "value": values[(space, m)],
             "space": space, "seed": int(seed), "config": config} for space, m in EXPECTED]


@dataclasses.dataclass
class MeasuresSummary:
    """What one :func:`record_suite_measures` call did."""

    pairs: int = 0  # (source, target, seed) measured now
    already: int = 0  # already complete in the store
    rows: int = 0
    wall_s: float = 0.0
    pair_s: list[float] = dataclasses.field(default_factory=list)  # seconds per measured pair
    errors: list[str] = dataclasses.field(default_factory=list)  # pairs that raised (retried next call)


def pending_pairs(grid: Any, store: Any) -> tuple[list[tuple[CellSpec, int]], int]:
    """``([(representative spec, seed)], n already measured)`` for the grid's distinct
    (source, target, seed) of source-using cells with a finished run in ``store``."""
    from benchmark.strategies import get

    finished = store.finished_ids()
    wanted: dict[tuple[str, str, int], CellSpec] = {}
    for run in grid.runs:
        spec = run.spec
        if (spec.source and get(spec.strategy).uses_source and run.run_id in finished
                and not is_pretrained(spec.source)):  # imagenet: no source images to measure a gap with
            wanted.setdefault((spec.source, spec.target, int(run.seed)), spec)
    have = _have(store, wanted)
    todo = [(spec, key[2]) for key, spec in wanted.items() if not set(EXPECTED) <= have.get(key, set())]
    return todo, len(wanted) - len(todo)


def record_suite_measures(grid: Any, store: Any, *, data_dir: str | os.PathLike | None = None,
                          checkpoint_dir: str | os.PathLike | None = None,
                          log: Callable[[str], None] | None = None) -> MeasuresSummary:
    """Compute and record the measures of every pending pair of ``grid`` (see :func:`pending_pairs`).

    One seed = one pretrained source model (cached by the runs that used it), so measures are
    per seed actually run; the report averages them over seeds. Each pair is written as soon as
    it is done (an interrupted call keeps what it finished); a pair that raises is listed in
    ``errors`` and left for the next call.
    """
    started = time.perf_counter()
    todo, already = pending_pairs(grid, store)
    summary = MeasuresSummary(already=already)
    for spec, seed in todo:
        _record_one(summary, store, f"{spec.source} -> {spec.target} seed {seed}", "measures", log,
                    lambda spec=spec, seed=seed: pair_measures(spec, seed, data_dir=data_dir,
                                                               checkpoint_dir=checkpoint_dir))
    summary.wall_s = time.perf_counter() - started
    return summary


def _record_one(summary: MeasuresSummary, store: Any, label: str, what: str,
                log: Callable[[str], None] | None, compute: Callable[[], list[dict[str, Any]]]) -> None:
    """Compute one pair's rows and record them at once; a pair that raises is listed in
    ``summary.errors`` (one pair's failure must not cost the others their measures)."""
    t0 = time.perf_counter()
    try:
        rows = compute()
    except Exception as err:
        summary.errors.append(f"{label}: {type(err).__name__}: {err}")
        return
    summary.rows += store.record_measures(rows)
    summary.pairs += 1
    summary.pair_s.append(time.perf_counter() - t0)
    if log:
        log(f"{what} {label}: {summary.pair_s[-1]:.1f}s")


BUDGET_FEATURE_SCORES = ("knn_loo", "probe_val", "leep", "logme", "nce", "h_score")
BUDGET_PIXEL_SCORES = ("knn_loo", "probe_val")
DATA_SCORES = ("label_overlap", "log10_source_train_size")
"""Scores for predicting negative transfer (:mod:`benchmark.analysis.predict`), beside the
measures above in the same table: per budget (``NAME_lpcK``, from the budget's labels only) on
the source model's features and on pixels, and two data facts (``space="data"``)."""


def budget_name(measure: str, labels_per_class: int) -> str:
    """``knn_loo`` at 10 labels per class → ``knn_loo_lpc10`` (``_lpcall`` for every label)."""
    return f"{measure}_lpc{'all' if int(labels_per_class) < 0 else int(labels_per_class)}"


def baseline_expected(budgets: Any) -> set[tuple[str, str]]:
    """Every (space, measure) :func:`baseline_measures` writes for these label budgets."""
    out = {("data", m) for m in DATA_SCORES}
    for lpc in budgets:
        if int(lpc) != 0:
            out |= {("features", budget_name(m, lpc)) for m in BUDGET_FEATURE_SCORES}
            out |= {("pixels", budget_name(m, lpc)) for m in BUDGET_PIXEL_SCORES}
    return out


def budget_split(labels: np.ndarray, num_classes: int, labels_per_class: int, validation: dict[str, Any],
                 seed: int, max_images: int = MAX_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)`` of the labelled budget a run of this seed gets (the engine's own
    :func:`~benchmark.engine.budget.split_budget` and ``split_validation``), at most
    ``max_images`` in all (a seeded subsample of a large ``all`` budget)."""
    from benchmark.engine.budget import split_budget
    from benchmark.engine.selection import split_validation

    budget, _ = split_budget(labels, num_classes, labels_per_class, seed)
    train, val = split_validation(labels, budget, validation or {}, seed)
    if budget.size > max_images:
        keep = budget[subsample_indices(budget.size, max_images, seed, side=2)]
        train, val = np.intersect1d(train, keep), np.intersect1d(val, keep)
    return train, val


def baseline_measures(spec: CellSpec, seed: int, budgets: Any = None, *,
                      data_dir: str | os.PathLike | None = None,
                      checkpoint_dir: str | os.PathLike | None = None,
                      max_images: int = MAX_IMAGES) -> list[dict[str, Any]]:
    """Rows of the prediction baselines for ``spec``'s pair and ``seed`` (see ``DATA_SCORES``,
    ``BUDGET_*_SCORES``), for each label budget in ``budgets`` (default: the spec's).

    Only the budget a run of this seed would get is read (its labels included: a practitioner
    holds them before training); never target test data, never train labels outside the budget.
    """
    from benchmark.analysis.baselines import knn_loo_accuracy, label_overlap, probe_val_accuracy
    from benchmark.data import load
    from benchmark.engine import source_features
    from benchmark.engine.malloc import keep_freed_buffers

    keep_freed_buffers()
    source = load(spec.source, split="train", spec=spec.input_spec, data_dir=data_dir)
    target = load(spec.target, split="train", spec=spec.input_spec, data_dir=data_dir)
    config = pair_config(spec, len(source.labels), 0)
    values: dict[tuple[str, str], float | None] = {
        ("data", "label_overlap"): label_overlap(source.class_names, target.class_names),
        ("data", "log10_source_train_size"): math.log10(max(len(source.labels), 1))}
    labels = np.asarray(target.labels, np.int64)
    for lpc in (spec.labels_per_class,) if budgets is None else budgets:
        if int(lpc) == 0:
            continue
        train, val = budget_split(labels, int(target.num_classes), int(lpc), spec.validation, seed, max_images)
        both = np.concatenate([train, val])
        feats, probs = source_features(spec, seed, target.images[both], data_dir=data_dir,
                                       checkpoint_dir=checkpoint_dir)
        feats, probs, y = feats.astype(np.float64), probs.astype(np.float64), labels[both]
        pixels = target.images[both].reshape(len(both), -1).astype(np.float64) / 255.0
        n_train = len(train)
        with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
            for space, f in (("features", feats), ("pixels", pixels)):
                values[(space, budget_name("knn_loo", lpc))] = _safe(knn_loo_accuracy, f, y)
                values[(space, budget_name("probe_val", lpc))] = _safe(
                    probe_val_accuracy, f[:n_train], y[:n_train], f[n_train:], y[n_train:])
            for name, fn, x in (("leep", leep, probs), ("nce", nce, probs), ("logme", logme, feats),
                                ("h_score", h_score, feats)):
                values[("features", budget_name(name, lpc))] = _safe(fn, x, y)
    return [{"source": spec.source, "target": spec.target, "measure": m, "value": v, "space": space,
             "seed": int(seed), "config": config} for (space, m), v in values.items()]


def _have(store: Any, keys: dict[tuple[str, str, int], CellSpec]) -> dict[tuple[str, str, int], set]:
    """The (space, measure) rows the store holds for each key, taken with the key's model."""
    model = {key: model_of(pair_config(spec, 0, 0)) for key, spec in keys.items()}
    have: dict[tuple[str, str, int], set[tuple[str, str]]] = {}
    frame = store.measures_frame(with_config=True)
    columns = ["source", "target", "measure", "space", "seed", "config"]
    for s, t, m, space, seed, config in frame[columns].itertuples(index=False):
        key = (s, t, int(seed))
        if key in model and model_of(config) == model[key]:
            have.setdefault(key, set()).add((space, m))
    return have


def record_prediction_scores(grid: Any, store: Any, *, finished_only: bool = True,
                             data_dir: str | os.PathLike | None = None,
                             checkpoint_dir: str | os.PathLike | None = None,
                             log: Callable[[str], None] | None = None) -> MeasuresSummary:
    """Make sure the store has every pre-training score of the grid's source-using pairs: the
    measures of :func:`pair_measures` and the baselines of :func:`baseline_measures` for every
    budget of the pair's cells; compute only what is missing. ``finished_only``: just the
    (pair, seed)s with a finished run (a fit suite); else every seed of the grid (a suite to
    predict before it runs). Each pair is written as soon as it is done."""
    from benchmark.strategies import get

    started = time.perf_counter()
    finished = store.finished_ids() if finished_only else None
    wanted: dict[tuple[str, str, int], CellSpec] = {}
    budgets: dict[tuple[str, str, int], set[int]] = {}
    for run in grid.runs:
        spec = run.spec
        if not (spec.source and get(spec.strategy).uses_source) or is_pretrained(spec.source):
            continue
        if finished is not None and run.run_id not in finished:
            continue
        key = (spec.source, spec.target, int(run.seed))
        wanted.setdefault(key, spec)
        budgets.setdefault(key, set()).add(int(spec.labels_per_class))
    have = _have(store, wanted)
    summary = MeasuresSummary()
    for key, spec in wanted.items():
        got = have.get(key, set())
        need_gap = not set(EXPECTED) <= got
        need_base = not baseline_expected(budgets[key]) <= got
        if not (need_gap or need_base):
            summary.already += 1
            continue
        kwargs = {"data_dir": data_dir, "checkpoint_dir": checkpoint_dir}

        def compute(spec=spec, key=key, need_gap=need_gap, need_base=need_base, kwargs=kwargs):
            rows = pair_measures(spec, key[2], **kwargs) if need_gap else []
            if need_base:
                rows += baseline_measures(spec, key[2], sorted(budgets[key]), **kwargs)
            return rows

        _record_one(summary, store, f"{key[0]} -> {key[1]} seed {key[2]}", "scores", log, compute)
    summary.wall_s = time.perf_counter() - started
    return summary


def _compare_blas_threads(source: str = "font_digits", target: str = "uci_digits_m", repeats: int = 2) -> None:
    """Seconds of the pixel gap (28×28, 1000 images per side) with OpenBLAS's default threads vs
    ``BLAS_THREADS``, alternating in one process (the evidence for ``BLAS_THREADS``)."""
    from threadpoolctl import threadpool_info

    from benchmark.cellspec import InputSpec
    from benchmark.data import load

    spec = InputSpec(28, 28, 1)
    a = load(source, split="train", spec=spec).images
    b = load(target, split="train", spec=spec).images
    a, b = a[subsample_indices(len(a), MAX_IMAGES, 0, 0)], b[subsample_indices(len(b), MAX_IMAGES, 0, 1)]
    default = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=None)
    print(f"pixel_gap {source} -> {target}, {len(a)} + {len(b)} images, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    for _ in range(repeats):
        for threads in (default, BLAS_THREADS):
            with threadpool_limits(limits=threads, user_api="blas"):
                t0 = time.perf_counter()
                pixel_gap(a, b)
                print(f"  BLAS threads {threads}: {time.perf_counter() - t0:.2f}s", flush=True)


if __name__ == "__main__":
    _compare_blas_threads()
