"""``tbench predict FIT_SUITE [--on OTHER_SUITE]``: how well pre-training scores predict negative transfer.

On a finished suite: every pre-training score (:mod:`benchmark.measures`, computed now where the
store lacks it, from cached source models) against every cell's verdict and gain, and a learned
combination evaluated leave-one-source-out (:mod:`benchmark.analysis.predict`). With ``--on``:
the combination fit on every pair of FIT_SUITE scores the pairs of OTHER_SUITE (their
pre-training scores are computed if missing; no target training), and where OTHER_SUITE has
finished runs, says how well it did. Writes JSON, CSV (one row per group and score), a pairs
CSV and the page ``reports/nt_prediction.html``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

from benchmark.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="judge pre-training scores as predictors of negative transfer")
    p.add_argument("suite", metavar="FIT_SUITE", help="a finished suite YAML (e.g. suites/zoo.yaml)")
    p.add_argument("--on", metavar="OTHER_SUITE", help="score the pairs of this suite with the combination fit on FIT_SUITE")
    p.add_argument("--store", help="store of FIT_SUITE, if not results/<suite name>.sqlite")
    p.add_argument("--on-store", help="store of OTHER_SUITE, if not results/<suite name>.sqlite")
    p.add_argument("-o", "--output", default="reports/nt_prediction.html", help="HTML page (default: %(default)s)")
    p.add_argument("--json", help="JSON file (default: results/predict/<suite>.json)")
    p.add_argument("--csv", help="CSV of every score's metrics (default: results/predict/<suite>.csv; "
                   "the pairs go beside it as <stem>_pairs.csv)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples over pairs (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    p.add_argument("--data-dir", help="prepared datasets directory (default: $TBENCH_DATA_DIR)")
    p.set_defaults(func=_predict)


def _suite(path: str, flag: str):
    from benchmark.config import load_suite
    from benchmark.grid import build_grid

    if not Path(path).is_file():
        raise UserError(f"no such suite file '{path}'; pass a suite YAML such as suites/zoo.yaml", field=flag)
    return build_grid(load_suite(path))


def _current_runs(store, grid):
    from benchmark.analysis.cells import CURRENT, grid_cell_ids, suite_membership

    runs = store.runs_frame()
    if runs.empty:
        return runs
    return runs[suite_membership(runs, grid.suite.name, grid_cell_ids(grid)) == CURRENT].reset_index(drop=True)


def _outputs(args, name: str, stores: list[Path]) -> dict[str, Path]:
    from benchmark.outputs import check_output, default_output

    json_path = Path(args.json) if args.json else default_output("results/predict", name, ".json")
    csv_path = Path(args.csv) if args.csv else default_output("results/predict", name, ".csv")
    out = {"html": check_output(args.output, stores=stores), "json": check_output(json_path, stores=stores, flag="--json"),
           "csv": check_output(csv_path, stores=stores, flag="--csv"),
           "pairs": check_output(csv_path.with_name(csv_path.stem + "_pairs.csv"), stores=stores, flag="--csv")}
    return out


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fit(args, grid, store_path: Path):
    """The fit suite's pair frame (scores computed where missing) and its evaluation."""
    from benchmark.analysis.predict import evaluate, pair_frame
    from benchmark.analysis.transfer import INCONCLUSIVE, NEGATIVE, POSITIVE, transfer_table
    from benchmark.measures import record_prediction_scores
    from benchmark.store import Store

    file = args.suite
    with Store(store_path, create=False, readonly=False) as store:
        finished = store.finished_ids()
        missing = [r for r in grid.runs if r.run_id not in finished]
        if missing:
            raise UserError(f"{len(missing)} of {len(grid.runs)} runs of {file} have no finished result in "
                            f"{store_path}; finish the suite first (`tbench run {file}`)", file=file)
        table = transfer_table(_current_runs(store, grid))
        verdicts = table[table["verdict"].isin([NEGATIVE, POSITIVE, INCONCLUSIVE])]
        if verdicts.empty:  # checked before any score is computed: bad input writes nothing
            raise UserError(f"no cell of {file} has a transfer verdict (each needs at least 5 paired seeds "
                            "against scratch); nothing to predict", file=file)
        if not (verdicts["verdict"] == NEGATIVE).any():
            raise UserError(f"no cell of {file} shows negative transfer, so the AUROC for negative transfer is "
                            "undefined; add sources that hurt (label noise, another task) to the suite", file=file)
        summary = record_prediction_scores(grid, store, finished_only=True, log=_log)
        measures = store.measures_frame()
    for error in summary.errors:
        _log(f"tbench predict: scores not computed for {error}")
    pairs = pair_frame(table, measures)
    return pairs, evaluate(pairs, n_boot=args.n_boot, seed=args.seed), summary


def _on(args, fit_pairs):
    """Predictions for OTHER_SUITE's pairs and, where it has verdicts, how well they did."""
    import numpy as np
    import pandas as pd

    from benchmark.analysis.predict import (
        fit_and_predict,
        group_name,
        pair_frame,
        pair_scores,
        score_lookup,
        score_metrics,
    )
    from benchmark.analysis.transfer import comparison_arm, transfer_table
    from benchmark.measures import record_prediction_scores
    from benchmark.store import Store, suite_store_path

    grid = _suite(args.on, "--on")
    store_path = suite_store_path(args.on, args.on_store)
    with Store(store_path) as store:
        summary = record_prediction_scores(grid, store, finished_only=False, log=_log)
        runs = _current_runs(store, grid)
        lookup = score_lookup(store.measures_frame())
    rows = {}
    for spec, _ in grid.cells:
        if spec.source and comparison_arm(spec.strategy) == "scratch":
            group = group_name(spec.strategy_label, "", spec.labels_per_class)
            rows[(group, spec.source, spec.target)] = {
                "group": group, "strategy_label": spec.strategy_label, "labels_per_class": spec.labels_per_class,
                "source": spec.source, "target": spec.target,
                **pair_scores(spec.source, spec.target, spec.labels_per_class, lookup)}
    new = fit_and_predict(fit_pairs, pd.DataFrame(list(rows.values())))
    verdicts = pair_frame(transfer_table(runs), _no_measures()) if len(runs) else None
    outcome = None
    if verdicts is not None and len(verdicts):
        keys = ["group", "source", "target"]
        joined = new.merge(verdicts[[*keys, "gain", "verdict", "negative", "positive"]], on=keys, how="inner")
        joined = joined[np.isfinite(joined["p_negative"].to_numpy(float))]
        if len(joined) >= 2:
            rng = np.random.default_rng([int(args.seed), len(joined)])
            idx = rng.integers(0, len(joined), size=(args.n_boot, len(joined)))
            p_neg, p_pos = joined["p_negative"].to_numpy(float), joined["p_positive"].to_numpy(float)
            outcome, _ = score_metrics(-p_neg, p_neg, p_pos, joined["gain"].to_numpy(float),
                                       joined["negative"].to_numpy(bool), joined["positive"].to_numpy(bool), idx)
        new = new.merge(verdicts[[*keys, "gain", "verdict"]], on=keys, how="left")
    fit_keys = set(zip(fit_pairs["group"], fit_pairs["source"], fit_pairs["target"], strict=True))
    overlap = sum(k in fit_keys for k in zip(new["group"], new["source"], new["target"], strict=True))
    return {"suite": grid.suite.name, "store": str(store_path), "n_pairs": int(len(new)),
            "pairs_also_in_fit": int(overlap),
            "scores_computed": summary.pairs, "score_errors": summary.errors, "evaluation": outcome}, new


def _no_measures():
    """An empty measures frame (verdicts of the other suite need no scores)."""
    import pandas as pd

    return pd.DataFrame(columns=["source", "target", "measure", "value", "space", "seed"])


def _predict(args: argparse.Namespace) -> int:
    import os

    from benchmark.analysis.predict import BY_KEY, COMBINATION, COMBINATION_INPUTS, COMBO_C
    from benchmark.analysis.verdicts import VERDICT_RULE
    from benchmark.report.predict_page import build_page, write_csvs
    from benchmark.store import suite_store_path

    started = time.perf_counter()
    if args.n_boot < 100:
        raise UserError(f"must be at least 100 (a 95% interval needs resamples), got {args.n_boot}", field="--n-boot")
    if args.seed < 0:
        raise UserError(f"must be 0 or more, got {args.seed}", field="--seed")
    if args.data_dir:
        os.environ["TBENCH_DATA_DIR"] = str(Path(args.data_dir).expanduser())
    grid = _suite(args.suite, "FIT_SUITE")
    store_path = suite_store_path(args.suite, args.store)
    if not store_path.is_file():
        raise UserError(f"no results for suite '{args.suite}' yet (looked for {store_path}); run "
                        f"`tbench run {args.suite}` first, or pass --store PATH", file=args.suite)
    name = grid.suite.name
    on_grid_name = None
    if args.on:
        on_grid_name = _suite(args.on, "--on").suite.name
        name = f"{name}_on_{on_grid_name}"
    stores = [store_path] + ([suite_store_path(args.on, args.on_store)] if args.on else [])
    paths = _outputs(args, name, stores)
    pairs, groups, summary = _fit(args, grid, store_path)
    on, new_pairs = _on(args, pairs) if args.on else (None, None)
    doc = {
        "title": f"Predicting negative transfer: {grid.suite.name}",
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "fit_suite": grid.suite.name, "fit_store": str(store_path),
        "protocol": {
            "outcome": "the cell's verdict: " + VERDICT_RULE,
            "scores": {k: {"kind": s.kind, "direction": s.direction, "note": s.note,
                           "beyond_budget": s.beyond_budget} for k, s in BY_KEY.items()},
            "orientation": "declared per score before any result (direction); AUROC < 0.5 = points the wrong way",
            "bootstrap": f"{args.n_boot} resamples of pairs, seed {args.seed}, percentile 95% intervals",
            "combination": (f"{COMBINATION}: median imputation, standardisation, L2 logistic regression "
                            f"(C={COMBO_C}, balanced classes) on {len(COMBINATION_INPUTS)} within-budget scores, "
                            "leave-one-source-out (a source's pairs are scored by a model fit on the other sources')"),
            "combination_inputs": list(COMBINATION_INPUTS),
        },
        "scores_computed_now": summary.pairs, "score_errors": summary.errors,
        "groups": groups, "on": on,
    }
    doc["wall_s"] = round(time.perf_counter() - started, 2)
    html = build_page(doc, pairs, new_pairs)
    for key in ("html", "json", "csv", "pairs"):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
    paths["json"].write_text(json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False, default=str) + "\n",
                             encoding="utf-8")
    write_csvs(doc, pairs, new_pairs, paths["csv"], paths["pairs"])
    paths["html"].write_text(html, encoding="utf-8")
    for g in groups:
        combo = next((m for m in g["metrics"] if m["score"] == COMBINATION), {})
        ranked = sorted((m for m in g["metrics"] if m.get("auroc_negative") is not None and m["score"] != COMBINATION),
                        key=lambda m: -m["auroc_negative"])
        best = ranked[0] if ranked else None
        print(f"{g['group']}: {g['n_pairs']} pairs, {g['n_negative']} negative, {g['n_positive']} positive; "
              + (f"best score {best['score']} AUROC(neg) {_ci(best, 'auroc_negative')}; " if best else "")
              + f"combination (leave-one-source-out) {_ci(combo, 'auroc_negative')}")
    if on and on.get("evaluation"):
        print(f"on {on['suite']}: AUROC(neg) {_ci(on['evaluation'], 'auroc_negative')} over {on['evaluation']['n']} pairs")
    elif on:
        print(f"on {on['suite']}: scored {on['n_pairs']} pairs (no finished verdicts there to check them against)")
    print(f"wrote {paths['html']}, {paths['json']}, {paths['csv']} and {paths['pairs']} "
          f"({time.perf_counter() - started:.1f}s)")
    return 0


def _ci(m: dict, name: str) -> str:
    if not m or m.get(name) is None:
        return "undefined"
    lo, hi = m.get(f"{name}_low"), m.get(f"{name}_high")
    return f"{m[name]:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else "")
