"""A small ResNet (He et al., CVPR 2016) with GroupNorm (Wu & He 2018), so there is no batch state.

Blocks: ``block0`` stem conv(width); ``block1..block3`` one residual basic block each with
width, 2·width, 4·width channels and strides 1, 2, 2; features = global average pool of
``block3`` (4·width); ``head`` dense(num_classes).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp

from benchmark.models.lenet import to_float


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=math.gcd(channels, 8))


class Stem(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return nn.relu(_norm(self.features)(nn.Conv(self.features, (3, 3), use_bias=False)(x)))


class BasicBlock(nn.Module):
    """Two 3×3 convs with an identity (or 1×1 projection) shortcut."""

    features: int
    stride: int = 1

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        s = (self.stride, self.stride)
        y = nn.Conv(self.features, (3, 3), strides=s, use_bias=False)(x)
        y = nn.relu(_norm(self.features)(y))
        y = _norm(self.features)(nn.Conv(self.features, (3, 3), use_bias=False)(y))
        if x.shape[-1] != self.features or self.stride != 1:
            x = nn.Conv(self.features, (1, 1), strides=s, use_bias=False, name="proj")(x)
        return nn.relu(x + y)


class ResNet(nn.Module):
    """``__call__(images) -> logits float32[B, num_classes]``; ``features(images) -> [B, 4·width]``."""

    num_classes: int
    width: int = 16
    num_blocks: int = 4

    def setup(self) -> None:
        self.block0 = Stem(self.width)
        self.block1 = BasicBlock(self.width, 1)
        self.block2 = BasicBlock(2 * self.width, 2)
        self.block3 = BasicBlock(4 * self.width, 2)
        self.head = nn.Dense(self.num_classes)

    def features(self, images: jnp.ndarray) -> jnp.ndarray:
        x = self.block0(to_float(images))
        x = self.block3(self.block2(self.block1(x)))
        return jnp.mean(x, axis=(1, 2))

    def classify(self, features: jnp.ndarray) -> jnp.ndarray:
        return self.head(features)

    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        return self.head(self.features(images))
