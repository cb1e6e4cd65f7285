"""LeNet-style CNN (LeCun et al. 1998), the fast backbone on CPU.

Blocks: ``block0`` conv(width) → relu → maxpool, ``block1`` conv(2·width) → relu → maxpool,
``block2`` flatten → dense(8·width) → relu (the features), ``head`` dense(num_classes).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def conv_as_matmul(lhs: jnp.ndarray, rhs: jnp.ndarray, window_strides, padding, lhs_dilation=None,
                   rhs_dilation=None, dimension_numbers=None, feature_group_count: int = 1,
                   precision=None, **kwargs) -> jnp.ndarray:
    """``lax.conv_general_dilated`` for stride-1 NHWC/HWIO convolutions, as shifted slices and one matmul.

    The same convolution (same parameters, same result up to float32 summation order), computed
    as im2col by ``kh·kw`` slices of the padded input concatenated on the channel axis, times the
    kernel reshaped to ``[kh·kw·C_in, C_out]``. Why: XLA:CPU's own convolutions, and above all
    their gradients, ran the LeNet training step at 2,641 images/s against 3,184–4,640 this way
    (width 16, batch 128; ``python tools/measure_engine.py plans``), and inside a rolled
    ``lax.scan`` they fall off the fast path entirely (~290 images/s) where slices and a matmul
    do not. Anything else (strides, dilation, groups, other layouts) goes to ``lax``.
    """
    plain = (lhs.ndim == 4 and feature_group_count == 1 and tuple(window_strides) == (1, 1)
             and all(d == 1 for d in (lhs_dilation or (1, 1))) and all(d == 1 for d in (rhs_dilation or (1, 1)))
             and (dimension_numbers is None or jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
                  == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))))
    if not plain:
        return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                            dimension_numbers, feature_group_count, precision=precision, **kwargs)
    kh, kw, c_in, c_out = rhs.shape
    pads = jax.lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), (1, 1), padding) if isinstance(padding, str) \
        else padding
    x = jnp.pad(lhs, ((0, 0), *[tuple(p) for p in pads], (0, 0)))
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    cols = jnp.concatenate([x[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)], axis=-1)
    return jnp.dot(cols, rhs.reshape(kh * kw * c_in, c_out), precision=precision)


def max_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
    """``nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")`` as a reshape and a max.

    Same values (odd sizes are padded with −inf at the end, as SAME pads); the gradient reaches
    the maximum of each window through ``reduce_max``, not XLA's ``select_and_scatter``, which
    made the LeNet step 1.5× slower on XLA:CPU (2,641 vs 4,073 images/s, width 16, batch 128).
    Ties (equal maxima in one window) share the gradient instead of giving it to the first; after
    a relu such ties are at 0, where the relu's gradient is 0 either way.
    """
    b, h, w, c = x.shape
    if h % 2 or w % 2:
        x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
    return x.reshape(b, x.shape[1] // 2, 2, x.shape[2] // 2, 2, c).max(axis=(2, 4))


class ConvPool(nn.Module):
    """3×3 conv → relu → 2×2 max-pool (none when ``pool`` is False).

    ``x: float32[B, H, W, C] -> [B, ⌈H/2⌉, ⌈W/2⌉, features]`` (``[B, H, W, features]`` unpooled).
    The parameters are ``nn.Conv``'s; :func:`conv_as_matmul` and :func:`max_pool_2x2` compute the
    same function faster on XLA:CPU.
    """

    features: int
    pool: bool = True

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = nn.relu(nn.Conv(self.features, (3, 3), padding="SAME", conv_general_dilated=conv_as_matmul)(x))
        return max_pool_2x2(x) if self.pool else x


class DenseBlock(nn.Module):
    """flatten → dense → relu. ``x: [B, ...] -> float32[B, features]``."""

    features: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return nn.relu(nn.Dense(self.features)(x.reshape((x.shape[0], -1))))


class LeNet(nn.Module):
    """``__call__(images) -> logits float32[B, num_classes]``; ``features(images) -> [B, 8·width]``.

    images: uint8 or float32 in [0, 1], shape [B, H, W, C]; standardised per image (to_float).
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


STANDARDIZE_EPS = 1e-4


def to_float(images: jnp.ndarray) -> jnp.ndarray:
    """Per-image standardisation: uint8 → [0, 1], then zero mean and unit variance per image.

    ``(x − mean) / sqrt(var + 1e-4)`` over H, W, C (float inputs are taken as [0, 1] already).
    Why: the built-in domains differ in contrast and polarity (font_digits draws random colours,
    the ``_m`` variants blend photos); without it a small LeNet trained on font_digits stays at
    chance for hundreds of steps (loss 2.30 after 256 SGD steps at width 4 vs 1.66 with it).
    """
    x = images.astype(jnp.float32)
    if images.dtype == jnp.uint8:
        x = x / 255.0
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    var = jnp.var(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + STANDARDIZE_EPS)
