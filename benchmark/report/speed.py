"""The report's Speed section: what ``tbench bench`` measured, read from its JSON files.

``tbench report --bench results/bench/X.json`` (repeatable) adds the section; ``tbench demo``
adds the newest complete bench of the machine it runs on, one file per bench section, when there
is one. Timings are not seeds: each number is the median of *n* interleaved trials with the range
[fastest, slowest] beside it. With n trials that range covers the true median with probability
1 − 2^(1−n) (75% at n = 3, 94% at n = 5), which the section states next to the tables.
"""

from __future__ import annotations

import base64
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import UserError

SECTIONS = ("step", "grid", "scaling")

CONTENDERS = {
    "engine": "transferbench engine (fast plan)",
    "engine_seeds": "engine, a cell's seeds one after another",
    "engine_seeds_batched": "engine, a cell's seeds batched in one vmapped kernel",
    "flax_tutorial": "Flax tutorial loop (jitted step, Python loop over host batches)",
    "torch_eager": "PyTorch eager, same model, optimizer and data",
}

TARGETS = {
    "engine_step_vs_torch_eager_ge_1.5x": ("training step vs PyTorch eager", "≥ 1.5×", "x"),
    "engine_step_mfu_ge_35pct": ("training step, share of the measured matmul peak (MFU)", "≥ 35%", "%"),
    "grid_engine_vs_naive_ge_5x": ("quick suite, engine vs naive grid", "≥ 5×", "x"),
    "grid_engine_compile_share_le_10pct": ("quick suite, share of wall time compiling", "≤ 10%", "%"),
    "gpu_seeds_batched_vs_tutorial_ge_5x": ("accelerator: seeds batched vs tutorial loop", "≥ 5×", "x"),
}


def load_bench(path: str | Path) -> dict[str, Any]:
    """Read one ``tbench bench`` JSON; ``UserError`` naming the file (and field) if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError("no such bench result file; `tbench bench` writes results/bench/<machine>-<date>.json",
                        file=str(path), field="--bench")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"not a JSON file ({err})", file=str(path)) from None
    if not isinstance(data, dict) or data.get("schema") != 1:
        raise UserError("not a `tbench bench` result (expected \"schema\": 1)", file=str(path), field="schema")
    if not isinstance(data.get("machine"), dict):
        raise UserError("missing the machine description", file=str(path), field="machine")
    if not any(isinstance(data.get(s), dict) for s in SECTIONS):
        raise UserError(f"has none of the sections {list(SECTIONS)}", file=str(path), field="sections")
    data["_path"] = str(path)
    data["_dir"] = str(path.parent)
    return data


def latest_benches(directory: str | Path, machine_slug: str) -> list[Path]:
    """The newest complete full-mode bench of this machine, per section: the files to show.

    Files are ``<machine_slug>-<date>*.json``; "newest" is the ``machine.date_utc`` inside.
    A file that is not a readable bench result is skipped (it is not this function's to judge).
    """
    newest: dict[str, tuple[str, Path]] = {}
    for path in sorted(Path(directory).glob(f"{machine_slug}-*.json")):
        try:
            data = load_bench(path)
        except UserError:
            continue
        if not data.get("complete") or data.get("mode") != "full":
            continue
        when = str(data["machine"].get("date_utc", ""))
        for section in SECTIONS:
            if isinstance(data.get(section), dict) and (section not in newest or when > newest[section][0]):
                newest[section] = (when, path)
    chosen: list[Path] = []
    for _, path in newest.values():
        if path not in chosen:
            chosen.append(path)
    return chosen


def _range(values: Sequence[float], digits: int) -> str:
    return f"[{min(values):,.{digits}f}–{max(values):,.{digits}f}]" if len(values) > 1 else "no range"


def _num(value: float | None, digits: int = 1, *, percent: bool = False, suffix: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:.{digits}f}%" if percent else f"{value:,.{digits}f}{suffix}"


def _rates(c: dict[str, Any]) -> list[float]:
    return [c["work_per_trial"] / s for s in c.get("seconds") or [] if s > 0]


def _step(step: dict[str, Any]) -> dict[str, Any]:
    peak = step.get("matmul_peak") or {}
    flops = (step.get("flops_per_image") or {}).get("training")
    rows = []
    for key, c in (step.get("contenders") or {}).items():
        rates = _rates(c)
        rows.append({"name": CONTENDERS.get(key, key), "key": key,
                     "rate": _num(c.get("rate"), 0), "range": _range(rates, 0), "n": len(rates),
                     "gflops": _num((c.get("flops_per_s") or math.nan) / 1e9, 2),
                     "mfu": _num(c.get("mfu"), 1, percent=True)})
    ratios = []
    contenders = step.get("contenders") or {}
    for key, value in (step.get("ratios") or {}).items():
        a, _, b = key.partition("_vs_")
        per_round = []
        if a in contenders and b in contenders:
            ra, rb = _rates(contenders[a]), _rates(contenders[b])
            per_round = [x / y for x, y in zip(ra, rb, strict=False)]
        ratios.append({"name": f"{CONTENDERS.get(a, a)} ÷ {CONTENDERS.get(b, b)}", "value": _num(value, 2, suffix="×"),
                       "range": _range(per_round, 2), "n": len(per_round)})
    cfg, plan, model = step.get("config") or {}, step.get("plan") or {}, step.get("model") or {}
    setup = (f"{model.get('name', '?')} (width {cfg.get('width', '?')}, {model.get('param_count', '?'):,} parameters), "
             f"batch {cfg.get('batch_size', '?')}, {cfg.get('steps_per_trial', cfg.get('steps', '?'))} steps per trial, "
             f"{cfg.get('optimizer', 'SGD')}; engine plan {plan.get('name', '?')} "
             f"(chunk {plan.get('chunk_steps', '?')}, unroll {plan.get('unroll', '?')}, seeds {plan.get('seeds', '?')})")
    peak_rates = [peak["work_per_trial"] / s for s in peak.get("seconds") or [] if s > 0]
    return {"setup": setup, "rows": rows, "ratios": ratios,
            "flops": _num((flops or math.nan) / 1e6, 2, suffix=" MFLOP"),
            "peak": _num((peak.get("rate") or math.nan) / 1e9, 1, suffix=" GFLOP/s"),
            "peak_range": _range([r / 1e9 for r in peak_rates], 1), "peak_n": len(peak_rates),
            "peak_what": f"{peak.get('dtype', 'float32')} matmul n = {peak.get('n', '?')}"}


def _grid(grid: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for key, label in (("engine", "transferbench (engine plan, one process)"),
                       ("naive", "naive grid (one process per run, source pretrained per run, compiled afresh)")):
        part = grid.get(key) or {}
        trials = part.get("trials") or []
        walls = [t["wall_s"] for t in trials if t.get("wall_s")]
        compile_shares = [t["compile_s"] / t["wall_s"] for t in trials if t.get("wall_s") and t.get("compile_s") is not None]
        sampled = [t for t in trials if t.get("estimated")]
        how = (f"extrapolated from {sampled[0]['sampled_runs']} sampled runs of {sampled[0]['runs']}"
               if sampled else "every run timed")
        rows.append({"name": label, "wall": _num(statistics.median(walls), 0, suffix=" s") if walls else "—",
                     "range": _range(walls, 0), "n": len(walls), "how": how,
                     "runs": trials[0].get("runs", "—") if trials else "—",
                     "compile": _num(statistics.median(compile_shares), 1, percent=True) if compile_shares else "—"})
    cfg = grid.get("config") or {}
    return {"suite": cfg.get("suite", "?"), "cells": cfg.get("cells", "?"), "runs": cfg.get("runs", "?"),
            "rows": rows, "speedup": _num(grid.get("speedup_engine_vs_naive"), 2, suffix="×")}


def _scaling(scaling: dict[str, Any], directory: str) -> dict[str, Any]:
    plot = scaling.get("plot")
    image = None
    if plot and (Path(directory) / plot).is_file():
        image = "data:image/png;base64," + base64.b64encode((Path(directory) / plot).read_bytes()).decode()
    tables = []
    for key, label in (("cells", "cells"), ("seeds", "seeds per cell"), ("labels_per_class", "labels per class")):
        rows = scaling.get(key)
        if not isinstance(rows, list) or not rows:
            continue
        tables.append({"axis": label, "rows": [
            {"x": "all" if key == "labels_per_class" and r.get(key) == -1 else r.get(key, "—"), "runs": r.get("runs", "—"), "seconds": _num(r.get("seconds"), 1),
             "per_run": _num(r.get("seconds_per_run"), 2), "compile": _num(r.get("compile_s"), 1),
             "rss": _num((r.get("peak_rss_bytes") or math.nan) / 2**30, 2, suffix=" GiB")} for r in rows]})
    return {"image": image, "tables": tables}


def _targets(targets: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for key, t in targets.items():
        label, threshold, unit = TARGETS.get(key, (key, str(t.get("threshold")), "x"))
        value = t.get("value")
        measured = _num(value, 1, percent=True) if unit == "%" else _num(value, 2, suffix="×")
        met = t.get("met")
        note = "; ".join(str(t[k]) for k in ("note", "plan_note") if t.get(k))
        out.append({"name": label, "measured": measured, "threshold": threshold,
                    "met": "met" if met else ("not judged" if met is None else "not met"),
                    "cls": "pos" if met else ("inc" if met is None else "neg"), "note": note})
    return out


def _memory(memory: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for when, m in memory.items():
        if not isinstance(m, dict):
            continue
        rows.append({"when": when.replace("_", " "),
                     "host": _num((m.get("host_peak_rss_bytes") or math.nan) / 2**30, 2, suffix=" GiB"),
                     "children": _num((m.get("children_peak_rss_bytes") or math.nan) / 2**30, 2, suffix=" GiB"),
                     "device": _num((m.get("device_peak_bytes") or math.nan) / 2**30, 2, suffix=" GiB")})
    return rows


def speed_section(benches: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Template context for the Speed section: one entry per bench file, newest first."""
    out = []
    for data in sorted(benches, key=lambda d: str(d["machine"].get("date_utc", "")), reverse=True):
        m = data["machine"]
        load_start, load_end = m.get("load_average_at_start"), data.get("load_average_at_end")
        versions = m.get("versions") or {}
        entry = {
            "file": data.get("_path", data.get("output", "?")),
            "date": m.get("date_utc", "?"), "mode": data.get("mode", "?"), "complete": bool(data.get("complete")),
            "machine": (f"{m.get('cpu_model', '?')}, {m.get('usable_cores', '?')} usable cores, "
                        f"{_num((m.get('memory_bytes') or math.nan) / 2**30, 0, suffix=' GiB')} memory, "
                        f"backend {m.get('backend', '?')} ({', '.join(map(str, m.get('devices') or [])) or '?'})"),
            "load": (f"{', '.join(f'{x:.1f}' for x in load_start) if load_start else '—'} at start, "
                     f"{', '.join(f'{x:.1f}' for x in load_end) if load_end else '—'} at end (1, 5, 15 min)"),
            "versions": ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if v),
            "step": _step(data["step"]) if isinstance(data.get("step"), dict) else None,
            "grid": _grid(data["grid"]) if isinstance(data.get("grid"), dict) else None,
            "scaling": (_scaling(data["scaling"], data.get("_dir", "."))
                        if isinstance(data.get("scaling"), dict) else None),
            "targets": _targets(data.get("targets") or {}),
            "memory": _memory(data.get("memory") or {}),
        }
        out.append(entry)
    return out
