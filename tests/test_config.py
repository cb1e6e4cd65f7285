"""Suite validation: every user mistake is one UserError naming file and field, exit 2, and the
store file is not touched; valid suites resolve every default (what `tbench show` prints)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import tiny
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.cli import main
from benchmark.config import load_suite, resolve_suite
from benchmark.config.schedule import TRAIN_DEFAULTS
from benchmark.errors import UserError
from benchmark.grid import build_grid
from benchmark.store import Store

SUITE = {
    "name": "tiny",
    "description": "test suite",
    "input": {"height": tiny.SPEC.height, "width": tiny.SPEC.width, "channels": tiny.SPEC.channels},
    "backbone": {"name": tiny.BACKBONE, "params": dict(tiny.BACKBONE_PARAMS)},
    "sources": [tiny.SOURCE],
    "targets": [tiny.TARGET],
    "strategies": ["scratch", {"name": "finetune_partial", "params": {"k": 2}}],
    "labels_per_class": [tiny.LABELS_PER_CLASS, "all"],
    "seeds": 2,
    "pretrain": dict(tiny.PRETRAIN),
    "train": dict(tiny.TRAIN),
}


def write(tmp_path: Path, suite: dict | str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(suite if isinstance(suite, str) else yaml.safe_dump(suite, sort_keys=False))
    return path


def test_a_valid_suite_resolves_every_default(tmp_path):
    suite = load_suite(write(tmp_path, SUITE))
    assert suite.seeds == (0, 1)
    assert suite.labels_per_class == (tiny.LABELS_PER_CLASS, -1)
    assert suite.strategies[0].params == {}
    assert suite.strategies[1].params == {"k": 2, "copy_blocks": -1}
    assert suite.train == {**TRAIN_DEFAULTS, **tiny.TRAIN, "learning_rate": 0.05}
    assert suite.pretrain["optimizer"] == "sgd"


def test_show_prints_a_suite_that_loads_back_to_the_same_grid(tmp_path, capsys):
    path = write(tmp_path, SUITE)
    assert main(["show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "k: 2" in shown and "copy_blocks: -1" in shown and "momentum: 0.9" in shown
    assert "# grid: 4 cells x 2 seeds = 8 runs" in shown
    again = load_suite(write(tmp_path, shown, "shown.yaml"))
    assert [r.run_id for r in build_grid(again).runs] == [r.run_id for r in build_grid(load_suite(path)).runs]


def broken(path: str, value) -> dict:
    """SUITE with the field at ``path`` (dot/index separated) set to ``value`` (None deletes)."""
    suite = copy.deepcopy(SUITE)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = suite
    for p in parents:
        node = node[p]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return suite


CASES = [
    (broken("targets.0", "uci_digts"), r"targets\[0\]: .*'uci_digts'.*did you mean 'uci_digits'"),
    (broken("sources.0", "font_digit@rotate=30"), r"sources\[0\]: .*font_digits"),
    (broken("strategies.1.name", "finetune_parital"), r"strategies\[1\]: unknown strategy 'finetune_parital' \(did you mean 'finetune_partial'"),
    (broken("strategies.1.params", {"kk": 2}), r"strategies\[1\]\.params\.kk: finetune_partial has no parameter 'kk' \(did you mean 'k'"),
    (broken("strategies.1.params", {"k": "two"}), r"strategies\[1\]\.params\.k: expected an integer"),
    (broken("backbone.name", "lenett"), r"backbone: unknown backbone 'lenett' \(did you mean 'lenet'"),
    (broken("backbone.params", {"depth": 3}), r"backbone\.params\.depth: lenet has no parameter 'depth'"),
    (broken("labels_per_class", [5, 100000]), r"labels_per_class\[1\]: 100000 labels per class is impossible for targets\[0\] 'uci_digits': its train split has only \d+ images of class \d+"),
    (broken("labels_per_class", [5, "some"]), r"labels_per_class\[1\]: expected an integer or 'all'"),
    (broken("labels_per_class", [-3]), r"labels_per_class\[0\]: must be at least 0"),
    (broken("seeds", "three"), r"seeds: expected a count"),
    (broken("seeds", [0, 0]), r"seeds\[1\]: seed 0 is listed twice"),
    (broken("train.steps", 0), r"train\.steps: steps must be ≥ 1"),
    (broken("train.stepz", 5), r"train\.stepz: unknown schedule field \(did you mean 'steps'"),
    (broken("pretrain.learning_rate", "fast"), r"pretrain\.learning_rate: expected a number"),
    (broken("input.channels", 2), r"input\.channels: must be 1 \(grey\) or 3"),
    (broken("targets", None), r"targets: missing"),
    (broken("sources", []), r"sources: the list is empty but a strategy in this suite uses a source"),
    ({**SUITE, "tragets": ["uci_digits"]}, r"tragets: unknown field \(did you mean 'targets'"),
    (broken("name", "a/b"), r"name: 'a/b' may only use letters"),
    ("name: x\ntargets: [uci_digits\nseeds: 1\n", r"line \d+, column \d+: malformed YAML"),
    ("- just\n- a list\n", r"a suite is a mapping"),
]


@pytest.mark.parametrize(("suite", "message"), CASES, ids=[m[:30] for _, m in CASES])
def test_bad_suites_exit_2_with_the_field_and_leave_the_store_alone(tmp_path, capsys, suite, message):
    path = write(tmp_path, suite)
    store = tmp_path / "store.sqlite"
    Store(store).close()
    before = store.read_bytes()
    with pytest.raises(UserError, match=message.replace(": ", r"(?: \(line \d+\))?: ", 1)):
        load_suite(path)
    assert main(["run", str(path), "--store", str(store), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tbench: error: {path}: ")
    assert store.read_bytes() == before
    fresh = tmp_path / "never.sqlite"
    assert main(["run", str(path), "--store", str(fresh), "--quiet"]) == 2
    assert not fresh.exists()


def test_errors_point_at_the_line(tmp_path):
    text = yaml.safe_dump(broken("targets.0", "uci_digts"), sort_keys=False)
    line = text.splitlines().index("- uci_digts") + 1
    with pytest.raises(UserError, match=rf": targets\[0\] \(line {line}\): unknown dataset"):
        load_suite(write(tmp_path, text))


def test_a_missing_suite_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such suite file"):
        load_suite(tmp_path / "nope.yaml")


_FIELDS = ["name", "input", "backbone", "sources", "targets", "strategies", "labels_per_class",
           "seeds", "pretrain", "train", "input.height", "strategies.1", "strategies.1.params",
           "labels_per_class.0", "train.batch_size", "backbone.params"]
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=8), st.lists(st.integers(-2, 3), max_size=3),
                    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(_FIELDS), value=_VALUES)
def test_any_broken_field_is_a_user_error_never_a_crash(field, value):
    suite = broken(field, value) if value is not None else broken(field, None)
    try:
        resolve_suite(suite, file="gen.yaml")
    except UserError as err:
        assert str(err).startswith("gen.yaml: ")
