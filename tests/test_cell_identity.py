"""One identity per cell, end to end: a suite changed between two `tbench run`s into one store.

Issue 14: the report grouped runs by display label, so after changing ``train.steps`` and
rerunning into the same store the old runs counted as extra seeds of the new cell (n doubled,
the interval narrowed, two experiments were mixed). Runs the real tiny suite twice (real
training, tests/tiny.py shapes, so kernels come from the shared compile cache).
"""

from __future__ import annotations

import json
import re

import yaml
from test_config import SUITE

from benchmark.cli import main

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

    assert main(["report", str(suite), "--store", str(store), "-o", "r.html", "--json", "v.json"]) == 0
    data = json.loads((tmp_path / "v.json").read_text())
    (verdict,) = data["verdicts"]  # finetune_full from font_digits at 5 labels/class
    assert verdict["n"] == SEEDS, verdict  # not 2 × SEEDS: the first run's cells are another experiment
    assert verdict["verdict"] == f"too few seeds (n={SEEDS} < 5)"
    assert data["ignored_runs"] == [{"kind": "stale", "runs": 2 * SEEDS,
                                     "reason": "stale: from an earlier version of this suite "
                                               "(its cell is no longer in the suite)"}]
    html = (tmp_path / "r.html").read_text()
    assert f"{2 * SEEDS} runs stale: from an earlier version of this suite" in html
    table = html.split('id="verdict-table"')[1].split("</table>")[0]
    assert re.findall(r'class="n">n=(\d+)</span>', table) and \
        set(re.findall(r'class="n">n=(\d+)</span>', table)) == {str(SEEDS)}

    # The bare store: both versions, each with its own scratch, shown apart by what differs.
    assert main(["report", str(store), "-o", "all.html", "--json", "all.json"]) == 0
    rows = json.loads((tmp_path / "all.json").read_text())["verdicts"]
    steps = IDENTITY_SUITE["train"]["steps"]
    assert sorted(r["variant"] for r in rows) == [f"train.steps={steps}", f"train.steps={2 * steps}"]
    assert all(r["n"] == SEEDS for r in rows)
