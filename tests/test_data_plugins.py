"""A dataset from the ``transferbench.datasets`` entry point of a package outside the source tree.

The package lives in a temp dir with its own ``*.dist-info/entry_points.txt``, put on
``sys.path``: exactly what ``importlib.metadata`` sees for an installed package. It declares one
working dataset, one whose module does not import, and one that is not a builder class.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import yaml

from benchmark.cellspec import InputSpec
from benchmark.cli import main
from benchmark.data import clear_cache, info, load, names
from benchmark.errors import DatasetUnavailable

PACKAGE = '''
"""A third-party dataset: two classes of constant 6x6 images, value = 10 * index + label."""
import numpy as np
from benchmark.data.builders import BuiltinBuilder


class Leaves(BuiltinBuilder, skip_registration=True):
    name = "leafpkg_leaves"
    NATIVE_SHAPE = (6, 6, 1)
    CLASS_NAMES = ("round", "sharp")
    SPLIT_SIZES = {"train": 8, "test": 4}
    PROVENANCE = "leaves drawn by leafpkg"
    LICENCE = "CC0"

    def make_splits(self):
        out = {}
        for split, n in self.SPLIT_SIZES.items():
            labels = np.arange(n) % 2
            images = (10 * np.arange(n) + labels)[:, None, None, None] * np.ones((1, 6, 6, 1))
            out[split] = {"image": images.astype(np.uint8), "label": labels}
        return out


def helper():
    return "not a builder"
'''

ENTRY_POINTS = """
[transferbench.datasets]
leaves = leafpkg:Leaves
broken = leafpkg_missing.module:Nothing
notabuilder = leafpkg:helper
"""


@pytest.fixture
def plugin_installed(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "leafpkg").mkdir(parents=True)
    (site / "leafpkg" / "__init__.py").write_text(PACKAGE)
    dist = site / "leafpkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: leafpkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    monkeypatch.syspath_prepend(str(site))
    clear_cache()
    yield tmp_path / "data"
    monkeypatch.undo()
    clear_cache()


def test_a_plugin_dataset_is_listed_described_and_loads_like_a_builtin(plugin_installed):
    data = plugin_installed
    assert {"leaves", "broken", "notabuilder"} <= set(names())
    meta = info("leaves", data)
    assert meta.available and meta.kind == "plugin" and meta.class_names == ("round", "sharp")
    assert meta.splits == {"train": 8, "test": 4} and meta.provenance == "leaves drawn by leafpkg"
    test = load("leaves", "test", data_dir=data)
    assert [int(i[0, 0, 0]) for i in test.images] == [0, 11, 20, 31]  # prepared, read back in order
    assert test.labels.tolist() == [0, 1, 0, 1]
    rotated = load("leaves@invert", "train", spec=InputSpec(8, 8, 3), data_dir=data)
    assert rotated.images.shape == (8, 8, 8, 3) and int(rotated.images[1, 0, 0, 0]) == 255 - 11
    assert (data / "leafpkg_leaves" / "1.0.0").is_dir()


def test_a_broken_plugin_is_one_sentence_and_the_others_still_work(plugin_installed, capsys, tmp_path):
    data = plugin_installed
    broken = info("broken", data)
    assert not broken.available
    assert broken.unavailable_reason.startswith(
        "dataset plugin 'broken' (leafpkg_missing.module:Nothing, from leafpkg) cannot be imported (ModuleNotFoundError")
    assert "not a tfds.core.GeneratorBasedBuilder subclass" in info("notabuilder", data).unavailable_reason
    with pytest.raises(DatasetUnavailable, match="cannot be imported"):
        load("broken", data_dir=data)
    assert main(["datasets", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "leaves" in out and "ModuleNotFoundError" in out and "Traceback" not in out
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "plug", "input": {"height": 8, "width": 8, "channels": 1}, "backbone": "lenet",
        "sources": [], "targets": ["leaves", "broken"], "strategies": ["scratch"], "labels_per_class": [1], "seeds": 1,
    }))
    assert main(["show", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "targets[1]" in err and "cannot be imported" in err and err.count("\n") == 1
    assert np.all(load("leaves", "train", data_dir=data).labels < 2)
