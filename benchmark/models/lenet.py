"""LeNet-style CNN (LeCun et al. 1998), the fast backbone on CPU.

Blocks: ``block0`` conv(width) → relu → maxpool, ``block1`` conv(2·width) → relu → maxpool,
``block2`` flatten → dense(8·width) → relu (the features), ``head`` dense(num_classes).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class ConvPool(nn.Module):
    """3×3 conv → relu → 2×2 max-pool. ``x: float32[B, H, W, C] -> [B, H/2, W/2, features]``."""

    features: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = nn.relu(nn.Conv(self.features, (3, 3), padding="SAME")(x))
        return nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")


class DenseBlock(nn.Module):
    """flatten → dense → relu. ``x: [B, ...] -> float32[B, features]``."""

    features: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return nn.relu(nn.Dense(self.features)(x.reshape((x.shape[0], -1))))


class LeNet(nn.Module):
    """``__call__(images) -> logits float32[B, num_classes]``; ``features(images) -> [B, 8·width]``.

    images: uint8 (scaled to [0, 1]) or float32, shape [B, H, W, C].
    """

    num_classes: int
    width: int = 16
    num_blocks: int = 3

    def setup(self) -> None:
        self.block0 = ConvPool(self.width)
        self.block1 = ConvPool(2 * self.width)
        self.block2 = DenseBlock(8 * self.width)
        self.head = nn.Dense(self.num_classes)

    def features(self, images: jnp.ndarray) -> jnp.ndarray:
        x = to_float(images)
        return self.block2(self.block1(self.block0(x)))

    def classify(self, features: jnp.ndarray) -> jnp.ndarray:
        return self.head(features)

    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        return self.head(self.features(images))


def to_float(images: jnp.ndarray) -> jnp.ndarray:
    """uint8 images → float32 in [0, 1]; float inputs pass through."""
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 255.0
    return images.astype(jnp.float32)
