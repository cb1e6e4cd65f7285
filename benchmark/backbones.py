"""What each backbone declares, as plain data (no JAX): its parameters, blocks and input sizes.

The suite schema (``benchmark.config``) validates ``backbone: {name, params}`` and the input
spec against these declarations without importing JAX; ``benchmark.models.build`` constructs
the flax module named by ``factory``. A new backbone = one module under ``benchmark/models/``
plus one entry here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from benchmark.errors import UserError, did_you_mean
from benchmark.strategies.declaration import Param

MAX_WIDTH = 1024


@dataclasses.dataclass(frozen=True)
class Backbone:
    """A backbone: ``params`` (constructor arguments a suite may set), ``num_blocks`` (the named
    blocks ``block0..`` strategies freeze or copy), the input sizes it supports (height and width
    in ``[min_size, max_size]``), and ``factory`` (``"module:attr"`` of the flax constructor)."""

    name: str
    factory: str
    num_blocks: int
    params: Mapping[str, Param]
    min_size: int = 8
    max_size: int = 512

    def resolve(self, given: Mapping[str, Any] | None, *, field: str = "backbone.params") -> dict[str, Any]:
        """The given params checked (type and bounds); defaults are the constructor's, not filled in
        (so a suite that never names ``width`` keeps the cell identity it always had)."""
        out = {}
        for key, value in dict(given or {}).items():
            if key not in self.params:
                raise UserError(f"{self.name} has no parameter {key!r}" + did_you_mean(str(key), list(self.params)),
                                field=f"{field}.{key}")
            out[key] = self.params[key].check(key, value, field=f"{field}.{key}")
        return out


_WIDTH = Param(int, 16, "channels of the first block (later blocks scale from it)", minimum=1, maximum=MAX_WIDTH)

BACKBONES: dict[str, Backbone] = {
    "lenet": Backbone("lenet", "benchmark.models.lenet:LeNet", 3, {"width": _WIDTH}),
    "convnet": Backbone("convnet", "benchmark.models.convnet:ConvNet", 5, {"width": _WIDTH}),
    "resnet": Backbone("resnet", "benchmark.models.resnet:ResNet", 4, {"width": _WIDTH}),
    "efficientnet_lite0": Backbone(
        "efficientnet_lite0", "benchmark.models.efficientnet_lite0:efficientnet_lite0", 8,
        {"pretrained": Param(str, "none", "ImageNet weights ('imagenet') or a random init ('none')",
                             choices=("imagenet", "none"))},
        min_size=32, max_size=320),
}


def names() -> list[str]:
    return sorted(BACKBONES)


def get(name: str) -> Backbone:
    """The declaration of backbone ``name``; an unknown name raises :class:`UserError`."""
    if name not in BACKBONES:
        raise UserError(f"unknown backbone {name!r}" + did_you_mean(name, names()), field="backbone")
    return BACKBONES[name]
