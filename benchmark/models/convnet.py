"""A 6-layer CNN (5 blocks + head) for layer-by-layer transfer (Yosinski et al. 2014).

LeNet has only 3 blocks, too few to see a dip in the middle layers; this net has 4 conv
layers and one dense feature layer below the classifier, each its own block, still cheap
on CPU at 28×28 (about 1.7× LeNet's FLOPs at the same width):

``block0`` conv(width) → relu → maxpool (28 → 14), ``block1`` conv(width) → relu,
``block2`` conv(2·width) → relu → maxpool (14 → 7), ``block3`` conv(2·width) → relu,
``block4`` flatten → dense(8·width) → relu (the features), ``head`` dense(num_classes).
Convolutions are 3×3 with SAME padding; inputs are standardised per image (``to_float``).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from benchmark.models.lenet import ConvPool, DenseBlock, to_float


class ConvNet(nn.Module):
    """``__call__(images) -> logits float32[B, num_classes]``; ``features(images) -> [B, 8·width]``.

    images: uint8 or float32 in [0, 1], shape [B, H, W, C]; standardised per image (to_float).
    """

    num_classes: int
    width: int = 16
    num_blocks: int = 5

    def setup(self) -> None:
        w = self.width
        self.block0 = ConvPool(w)
        self.block1 = ConvPool(w, pool=False)
        self.block2 = ConvPool(2 * w)
        self.block3 = ConvPool(2 * w, pool=False)
        self.block4 = DenseBlock(8 * w)
        self.head = nn.Dense(self.num_classes)

    def features(self, images: jnp.ndarray) -> jnp.ndarray:
        x = to_float(images)
        return self.block4(self.block3(self.block2(self.block1(self.block0(x)))))

    def classify(self, features: jnp.ndarray) -> jnp.ndarray:
        return self.head(features)

    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        return self.head(self.features(images))
