"""The bad-input campaign of issue 15 as a test: generated bad ``--store`` targets × every command
through the real CLI (``benchmark.cli.main``), hostile YAML, and generated broken suites.

Every refused input: exit status 2, one ``tbench: error:`` sentence, no traceback, and the target
(type, mode, size, mtime, bytes) and its folder exactly as they were. Hypothesis is derandomized
and bounded, so the campaign is the same on every run and takes seconds.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_safety import (
    BAD_TARGETS,
    COMMANDS,
    SAFETY_SUITE,
    cli,
    command,
    listing,
    one_error,
    snapshot,
    suite_file,
)

from benchmark.config.yamlfile import MAX_BYTES, MAX_NODES, read_suite_file
from benchmark.errors import UserError

CAMPAIGN = settings(derandomize=True, max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# File names a user (or a script) might give: spaces, URI characters, unicode, long names.
NAMES = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
                min_size=0, max_size=40).map(lambda s: f"s{s}.sqlite")
KINDS = sorted(k for k in BAD_TARGETS if k != "device" or os.geteuid() == 0)


@CAMPAIGN
@given(kind=st.sampled_from(KINDS), name=st.sampled_from(COMMANDS), filename=NAMES)
def test_campaign_bad_store_targets_are_refused_and_untouched(kind, name, filename, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite = suite_file(root)
        folder = root / "store"
        folder.mkdir()
        target = BAD_TARGETS[kind](folder)
        named = folder / filename  # the same bad thing under a generated name
        if kind != "symlink loop" and os.path.lexists(target) and not os.path.lexists(named):
            os.rename(target, named)
            target = named
        before, files = snapshot(target), listing(folder)
        assert cli(*command(name, suite, target, root / "out.x")) == 2, (kind, name, filename)
        err = capsys.readouterr().err
        assert one_error(err), (kind, name, err)
        assert snapshot(target) == before, (kind, name)
        assert listing(folder) == files, (kind, name)
        assert not (root / "out.x").exists()


# -- hostile YAML: the loader's limits ---------------------------------------------------------------

def _laughs(levels: int) -> str:
    """The 'billion laughs': few aliases, 10^levels values once written out."""
    items = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "name: bomb\ntargets: [" + ", ".join(items) + "]\n"


def test_an_alias_bomb_under_the_alias_count_is_refused_with_its_line(tmp_path):
    # 90 aliases (under the count limit of 100) that expand to 10^9 values.
    path = tmp_path / "bomb.yaml"
    path.write_text(_laughs(9))
    with pytest.raises(UserError, match=rf"bomb.yaml: line 2: the YAML expands to more than {MAX_NODES:,}"):
        read_suite_file(path)
    path.write_text(_laughs(3))  # 1,000 values: fine
    assert len(read_suite_file(path)[0]["targets"]) == 3


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("name: loop\ntargets: &a [uci_digits, *a]\n")
    with pytest.raises(UserError, match="inside its own anchor"):
        read_suite_file(path)


@pytest.mark.parametrize("text, words", [
    ("name: deep\ntargets: " + "[" * 5000 + "]" * 5000 + "\n", "nests deeper than"),
    ("name: big\ndescription: '" + "x" * (MAX_BYTES + 10) + "'\n", "a suite may be at most"),
    (_laughs(9), "expands to more than"),
])
def test_hostile_yaml_is_exit_2_through_the_cli(text, words, tmp_path, capsys):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    store = tmp_path / "s.sqlite"
    for argv in (["show", str(path)], ["run", str(path), "--store", str(store), "--quiet"],
                 ["status", str(path), "--store", str(store)]):
        assert cli(*argv) == 2
        err = capsys.readouterr().err
        assert one_error(err) and words in err and str(path) in err
    assert not store.exists()


def test_a_fifo_named_as_a_suite_answers_at_once(tmp_path):
    fifo = tmp_path / "suite.yaml"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "benchmark.cli", "show", str(fifo)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


# -- generated broken suites (the schema half) -----------------------------------------------------

# Values no numeric field of a suite may take.
HOSTILE = [-4, 0, 1.5, "4", 10**12, 2**70, math.nan, math.inf, -math.inf, None, [], {}, True, "x" * 100_000]
FIELDS = [("train", "steps"), ("train", "batch_size"), ("train", "learning_rate"), ("train", "momentum"),
          ("train", "weight_decay"), ("seeds",), ("input", "height"), ("backbone", "params", "width")]
# What a correct schema may accept (a finite positive rate diverges at run time, caught there);
# every other (field, value) pair above must be refused.
MAY_ACCEPT = {("train", "learning_rate"): [1.5, 10**12, 2**70], ("train", "momentum"): [0],
              ("train", "weight_decay"): [0, 1.5, 10**12, 2**70]}


def _must_refuse(field: tuple, value) -> bool:
    return not any(type(value) is type(ok) and value == ok for ok in MAY_ACCEPT.get(field, []))


def _set(suite: dict, path: tuple, value) -> dict:
    out = yaml.safe_load(yaml.safe_dump(suite))
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


@settings(CAMPAIGN, max_examples=200)  # 8 fields x 14 values: the whole space
@given(field=st.sampled_from(FIELDS), value=st.sampled_from(HOSTILE))
def test_campaign_broken_suites_are_refused_before_any_store_is_made(field, value, capsys):
    refused = _must_refuse(field, value)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite = root / "suite.yaml"
        text = yaml.safe_dump(_set(SAFETY_SUITE, field, value), sort_keys=False)
        suite.write_text(text)
        store = root / "s.sqlite"
        code = cli("show", str(suite))
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if not refused:
            return
        assert code == 2, (field, value)
        assert one_error(err) and "suite.yaml" in err, (field, value, err)
        assert cli("run", str(suite), "--store", str(store), "--quiet") == 2
        capsys.readouterr()
        assert not store.exists() and sorted(os.listdir(root)) == ["suite.yaml"]


# -- a killed dataset preparation ------------------------------------------------------------------

_PREPARE = "import sys; from benchmark.data.datasets import prepare; prepare('uci_digits', sys.argv[1])"


def test_an_incomplete_dataset_folder_from_a_killed_preparation_is_removed_next_time(tmp_path):
    from benchmark.data.datasets import prepare

    root = tmp_path / "tfds"
    proc = subprocess.Popen([sys.executable, "-c", _PREPARE, str(root)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    left: list[Path] = []
    deadline = time.monotonic() + 120
    while not left and proc.poll() is None and time.monotonic() < deadline:
        left = list((root / "uci_digits").glob("incomplete.*"))
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert left and all(p.is_dir() for p in left), "the preparation ended before it could be killed"
    builder = prepare("uci_digits", root)
    assert builder.is_prepared()
    assert not list((root / "uci_digits").glob("incomplete.*"))
    assert [p.name for p in (root / "uci_digits").iterdir()] == [builder.version.__str__()]


# -- the issue's wrongly accepted suites, one named case each ---------------------------------------

@pytest.mark.parametrize("change, words", [
    pytest.param({"targets": ["x" * 100_000]}, "targets[0]", id="100000-character dataset name"),
    pytest.param({"seeds": [2**70]}, "seeds[0]", id="seed 2^70"),
    pytest.param({"seeds": 10**7}, "seeds", id="10^7 seeds"),
    pytest.param({"train": {**SAFETY_SUITE["train"], "steps": 10**12}}, "train.steps", id="steps 10^12"),
    pytest.param({"train": {**SAFETY_SUITE["train"], "learning_rate": math.nan}}, "train.learning_rate", id="NaN rate"),
    pytest.param({"train": {**SAFETY_SUITE["train"], "momentum": math.inf}}, "train.momentum", id="inf momentum"),
    pytest.param({"backbone": {"name": "lenet", "params": {"width": "4"}}}, "backbone", id="width '4'"),
    pytest.param({"backbone": {"name": "lenet", "params": {"width": -4}}}, "backbone", id="width -4"),
    pytest.param({"input": {"height": 100_000, "width": 16, "channels": 1}}, "input", id="input 100000"),
    pytest.param({"sources": ["font_digits"], "strategies": [{"name": "finetune_partial", "params": {"k": 100}}]},
                 "strategies[0]", id="finetune_partial k 100"),
    pytest.param({"name": "../../escape"}, "name", id="name with a path"),
    pytest.param({"targets": ["uci_digits@classes=0-99"]}, "targets[0]", id="@classes=0-99"),
    pytest.param({"targets": ["uci_digits@classes=5"]}, "targets[0]", id="one-class target"),
])
def test_each_wrongly_accepted_suite_of_the_issue_is_refused(change, words, tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({**SAFETY_SUITE, **change}, sort_keys=False))
    store = tmp_path / "s.sqlite"
    for argv in (["show", str(suite)], ["run", str(suite), "--store", str(store), "--quiet"]):
        assert cli(*argv) == 2, argv
        err = capsys.readouterr().err
        assert one_error(err) and f"suite.yaml: {words}" in err, err
    assert not store.exists()
