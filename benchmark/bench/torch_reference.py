"""The PyTorch eager reference: the engine's LeNet, layer for layer, with the same initial weights.

``benchmark.models.lenet.LeNet`` is per-image standardisation → 3×3 conv(w) → relu → 2×2 max-pool → 3×3 conv(2w) → relu →
2×2 max-pool → flatten → dense(8w) → relu → dense(classes). :class:`TorchLeNet` is the same
graph; :func:`load_flax_params` copies a flax parameter tree into it (HWIO → OIHW kernels; the
flatten runs in NHWC order as flax's does), so both frameworks start from identical weights and
compute the same function — the test suite checks both the parameter count and the logits.

Training is the plain PyTorch loop (``zero_grad``/``backward``/``step``) with
``torch.optim.SGD(momentum=...)``, the same update rule as ``optax.sgd(lr, momentum)``
(``v ← μ v + g; θ ← θ − η v``), with ``torch.set_num_threads(os.cpu_count())``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.models.lenet import STANDARDIZE_EPS


class TorchLeNet(nn.Module):
    """``forward(images uint8[B, C, H, W]) -> logits float32[B, num_classes]``."""

    def __init__(self, num_classes: int, width: int = 16, input_shape: tuple[int, int, int] = (28, 28, 1)):
        super().__init__()
        height, wide, channels = input_shape
        self.conv0 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv1 = nn.Conv2d(width, 2 * width, 3, padding=1)
        flat = math.ceil(math.ceil(height / 2) / 2) * math.ceil(math.ceil(wide / 2) / 2) * 2 * width
        self.dense = nn.Linear(flat, 8 * width)
        self.head = nn.Linear(8 * width, num_classes)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        # Per-image standardisation, as benchmark.models.lenet.to_float.
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        var = x.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        x = (x - mean) * torch.rsqrt(var + STANDARDIZE_EPS)
        x = self.pool(torch.relu(self.conv0(x)))
        x = self.pool(torch.relu(self.conv1(x)))
        x = x.permute(0, 2, 3, 1).flatten(1)  # NHWC flatten order, as flax
        x = torch.relu(self.dense(x))
        return self.head(x)


def load_flax_params(model: TorchLeNet, params: dict[str, Any]) -> TorchLeNet:
    """Copy a ``benchmark.models`` LeNet parameter tree into ``model`` (in place; returns it)."""

    def t(x: Any) -> torch.Tensor:
        return torch.from_numpy(np.array(x, dtype=np.float32))

    with torch.no_grad():
        for conv, block in ((model.conv0, "block0"), (model.conv1, "block1")):
            leaf = params[block]["Conv_0"]
            conv.weight.copy_(t(leaf["kernel"]).permute(3, 2, 0, 1))
            conv.bias.copy_(t(leaf["bias"]))
        for dense, leaf in ((model.dense, params["block2"]["Dense_0"]), (model.head, params["head"])):
            dense.weight.copy_(t(leaf["kernel"]).T)
            dense.bias.copy_(t(leaf["bias"]))
    return model


def param_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def training_trial(
    model: TorchLeNet,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    learning_rate: float,
    momentum: float,
    steps: int,
    seed: int = 0,
) -> Callable[[], float]:
    """A trial for :func:`benchmark.bench.timing.interleave`: ``steps`` SGD-momentum steps.

    images: uint8[N, H, W, C] (moved to NCHW once, up front); labels: int[N]. Each step draws a
    shuffled batch by index, as the JAX contenders do. Returns the trial, which returns the last
    loss (``.item()`` waits for the work).
    """
    torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    x_all = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)
    y_all = torch.from_numpy(labels.astype(np.int64)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    n = x_all.shape[0]

    def trial() -> float:
        loss = None
        for _ in range(steps):
            idx = torch.randint(0, n, (batch_size,), generator=generator).to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_all[idx]), y_all[idx])
            loss.backward()
            optimizer.step()
        return float(loss.item())

    return trial


def torch_description() -> dict[str, Any]:
    return {
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
    }
