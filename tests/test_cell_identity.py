"""One identity per cell, end to end: a suite changed between two `tbench run`s into one store.

Issue 14: the report grouped runs by display label, so after changing ``train.steps`` and
rerunning into the same store the old runs counted as extra seeds of the new cell (n doubled,
the interval narrowed, two experiments were mixed); export mixed them too. Runs the real tiny suite twice (real
training, tests/tiny.py shapes, so kernels come from the shared compile cache).
"""

from __future__ import annotations

import json
import re

import pandas as pd
import yaml
from test_config import SUITE

from benchmark.cli import main
from benchmark.config import load_suite
from benchmark.grid import build_grid
from benchmark.store import Store

SEEDS = 2
IDENTITY_SUITE = {**SUITE, "name": "identity", "strategies": ["scratch", "finetune_full"],
                  "labels_per_class": [SUITE["labels_per_class"][0]], "seeds": SEEDS}


def test_changing_train_steps_never_pools_the_old_runs_into_the_new_cells(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "identity.yaml"
    store = tmp_path / "identity.sqlite"
    suite.write_text(yaml.safe_dump(IDENTITY_SUITE, sort_keys=False))
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--no-measures"]) == 0
    changed = {**IDENTITY_SUITE, "train": {**IDENTITY_SUITE["train"], "steps": 2 * IDENTITY_SUITE["train"]["steps"]}}
    suite.write_text(yaml.safe_dump(changed, sort_keys=False))
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--no-measures"]) == 0

    # The seeds where both arms of the suite's current cells finished ok (a tiny run may end
    # diverged at chance): the most a verdict may count. Pooling would count both versions.
    runs = Store(store, create=False).runs_frame()
    current = {r.cell_id for r in build_grid(load_suite(suite)).runs}
    ok = runs[runs["cell_id"].isin(current) & (runs["status"] == "ok")]
    paired = len(set(ok.loc[ok["strategy"] == "scratch", "seed"]) & set(ok.loc[ok["strategy"] != "scratch", "seed"]))
    assert len(runs) == 4 * SEEDS and 1 <= paired <= SEEDS

    assert main(["report", str(suite), "--store", str(store), "-o", "r.html", "--json", "v.json"]) == 0
    data = json.loads((tmp_path / "v.json").read_text())
    (verdict,) = data["verdicts"]  # finetune_full from font_digits at 5 labels/class
    assert verdict["n"] == paired, verdict  # the first run's cells are another experiment: never pooled
    assert verdict["verdict"] == f"too few seeds (n={paired} < 5)"
    assert data["ignored_runs"] == [{"kind": "stale", "runs": 2 * SEEDS,
                                     "reason": "stale: from an earlier version of this suite "
                                               "(its cell is no longer in the suite)"}]
    html = (tmp_path / "r.html").read_text()
    assert f"{2 * SEEDS} runs stale: from an earlier version of this suite" in html
    table = html.split('id="verdict-table"')[1].split("</table>")[0]
    shown = set(re.findall(r'class="n">n=(\d+)</span>', table))
    assert shown and shown <= {str(paired), str(SEEDS)}  # accuracy over its seeds, differences over pairs

    # The bare store: both versions, each with its own scratch, shown apart by what differs.
    assert main(["report", str(store), "-o", "all.html", "--json", "all.json"]) == 0
    rows = json.loads((tmp_path / "all.json").read_text())["verdicts"]
    steps = IDENTITY_SUITE["train"]["steps"]
    assert sorted(r["variant"] for r in rows) == [f"train.steps={steps}", f"train.steps={2 * steps}"]
    assert all(1 <= r["n"] <= SEEDS for r in rows)  # each version paired with its own scratch only

    # Export: the suite's current runs only; --all adds the stale ones, marked.
    assert main(["export", str(suite), "--store", str(store), "-o", "runs.csv"]) == 0
    current = pd.read_csv(tmp_path / "runs.csv")
    assert len(current) == 2 * SEEDS and set(current["cell_status"]) == {"current"}
    assert main(["export", str(suite), "--store", str(store), "-o", "all.csv", "--all"]) == 0
    every = pd.read_csv(tmp_path / "all.csv")
    assert every["cell_status"].value_counts().to_dict() == {"current": 2 * SEEDS, "stale": 2 * SEEDS}
