"""EfficientNet-Lite0 (Tan & Le, ICML 2019; the "Lite" edge variant), optionally ImageNet-pre-trained.

Architecture (224×224 shapes; the net runs at any resolution, the features are a global pool):

* stem: 3×3 conv stride 2, 32 channels, BN, ReLU6 (112×112);
* 16 MBConv layers in 7 stages ``(expand, channels, repeats, stride, kernel)`` = ``STAGES``. One
  MBConv = [1×1 expand conv to expand·C_in, BN, ReLU6] (absent when expand = 1), k×k depthwise
  conv with the stride, BN, ReLU6, 1×1 project conv, BN, plus the input when the stride is 1 and
  C_in = C_out. Lite = no squeeze-excite, ReLU6 instead of swish, stem and top not width-scaled;
* top: 1×1 conv to 1280, BN, ReLU6 (7×7); global average pool → the 1280-d features;
* ``head``: dense(num_classes) (ImageNet: 1000).

Every convolution has no bias and TensorFlow "SAME" padding (for stride 2 the extra pixel is
padded at the bottom/right), as the TF original and EfficientNet-PyTorch's static-same padding
at 224. The blocks, for ``transplant`` and ``finetune_partial`` (bottom to top):
``block0`` stem + stage 0 (16 ch, /2), ``block1`` stage 1 (24, /4), ``block2`` stage 2 (40, /8),
``block3`` stage 3 (80, /16), ``block4`` stage 4 (112, /16), ``block5`` stage 5 (192, /32),
``block6`` stage 6 (320, /32), ``block7`` top conv (1280).

Batch-norm is frozen: each BN is stored as the per-channel affine it computes in inference mode
with the ImageNet statistics, ``scale = γ/√(var + 1e-3)``, ``bias = β − mean·scale``
(``benchmark.pretrained``). Those two parameters train with their block; the statistics cannot
adapt (no ``batch_stats`` collection: the engine's kernels carry only ``params``). Dropout (0.2)
and drop-connect are training-time regularisers of the ImageNet recipe and are not applied.

``pretrained``: ``"imagenet"`` makes the initialisers return the converted ImageNet weights (the
head too when ``num_classes`` is 1000; otherwise a fresh head), so ``init_params`` gives the
pre-trained model (a cell that must start from random weights, such as ``scratch``, has to say
``pretrained: none``; ``benchmark.grid`` does it for every cell without a source model).
``"none"`` is a random init with identity BN affines, so without normalisation it must keep the
signal's scale by itself: He fan-in convolutions (variance 2/fan-in before ReLU6, 1/fan-in for
the linear project) and a zero scale on the project of every residual MBConv, so each residual
branch starts as the identity (Goyal et al. 2017's zero-γ). The TF fan-out init, made for a net
with batch statistics, shrinks the depthwise layers' output by their channel count: the features
of random digits were ~1e-11 and scratch sat at chance; with this init it trains (uci_digits,
10 labels/class, 48×48, 96 SGD steps at lr 0.01: 0.81 test accuracy). ImageNet weights need 3 channels.

Input: ``images uint8[B, H, W, 3]`` (or float32 in [0, 1]), normalised inside as the TF
original: ``(x − 127) / 128`` per channel, about [−1, 1] (:func:`normalize`). Photos and small
digits are brought to the model by :func:`align_images` (resize with antialiasing, grey → RGB).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmark.errors import UserError

STAGES = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3),
          (6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3))
"""``(expand, channels, repeats, stride, kernel)`` of the 7 MBConv stages (efficientnet_lite_builder)."""

STEM_CHANNELS = 32
TOP_CHANNELS = 1280
IMAGENET_CLASSES = 1000
MEAN, STD = 127.0, 128.0
"""The Lite models' input normalisation (TF ``MEAN_RGB = [127]*3``, ``STDDEV_RGB = [128]*3``)."""
PRETRAINED = ("none", "imagenet")

Init = Callable[..., jax.Array]


def normalize(images: jnp.ndarray) -> jnp.ndarray:
    """``uint8[B, H, W, C]`` (or float in [0, 1]) → float32 ``(x − 127) / 128`` with x in [0, 255]."""
    x = images.astype(jnp.float32)
    if images.dtype != jnp.uint8:
        x = x * 255.0
    return (x - MEAN) / STD


def _init(module: nn.Module, name: str, default: Init) -> Init:
    """The initialiser of parameter ``name`` of ``module``: its ImageNet value if ``pretrained``."""
    if module.pretrained != "imagenet":
        return default
    return _imagenet_init("/".join((*module.scope.path, name)))


def _imagenet_init(key: str) -> Init:
    """An initialiser returning the converted ImageNet weight ``key`` (``block1/mbconv0/expand/conv/kernel``)."""
    from benchmark.pretrained import imagenet_weights

    value = imagenet_weights()[key]

    def init(rng: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        del rng
        if tuple(shape) != value.shape:
            raise ValueError(f"ImageNet weight {key} has shape {value.shape}, the model wants {tuple(shape)}")
        return jnp.asarray(value, dtype)

    return init


def conv_as_slices(lhs: jnp.ndarray, rhs: jnp.ndarray, window_strides, padding, lhs_dilation=None,
                   rhs_dilation=None, dimension_numbers=None, feature_group_count: int = 1,
                   precision=None, **kwargs) -> jnp.ndarray:
    """``lax.conv_general_dilated`` for this net's NHWC/HWIO convolutions, as strided slices.

    Depthwise (``feature_group_count`` = C_in, kernel ``[k, k, 1, C]``): the sum over the k² taps
    of a strided slice of the padded input times that tap's per-channel weight; any other
    convolution: the k² strided slices concatenated on the channel axis (im2col) times the kernel
    as a ``[k²·C_in, C_out]`` matrix. Same function and parameters as ``lax`` (float32 summation
    order aside). Why: XLA:CPU's grouped convolutions ran EfficientNet-Lite0's depthwise layers
    6–17× slower than this (e.g. 14×14×480, 3×3, batch 32: 200 ms vs 12 ms; PyTorch 43 ms), and
    its strided stem conv has no fast path either. Dilation and other layouts go to ``lax``.
    """
    c_in = lhs.shape[-1] if lhs.ndim == 4 else 0
    depthwise = feature_group_count == c_in and rhs.ndim == 4 and rhs.shape[2] == 1
    plain = (lhs.ndim == 4 and (feature_group_count == 1 or depthwise)
             and all(d == 1 for d in (lhs_dilation or (1, 1))) and all(d == 1 for d in (rhs_dilation or (1, 1)))
             and (dimension_numbers is None or jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
                  == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))))
    if not plain:
        return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                            dimension_numbers, feature_group_count, precision=precision, **kwargs)
    kh, kw = rhs.shape[:2]
    sh, sw = window_strides
    pads = jax.lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), (sh, sw), padding) if isinstance(padding, str) \
        else padding
    x = jnp.pad(lhs, ((0, 0), *[tuple(p) for p in pads], (0, 0)))
    h, w = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    taps = [(i, j, x[:, i:i + sh * (h - 1) + 1:sh, j:j + sw * (w - 1) + 1:sw, :]) for i in range(kh) for j in range(kw)]
    if depthwise:
        return sum(tap * rhs[i, j, 0] for i, j, tap in taps)
    cols = jnp.concatenate([tap for _, _, tap in taps], axis=-1)
    return jnp.dot(cols, rhs.reshape(kh * kw * c_in, rhs.shape[-1]), precision=precision)


class ConvBN(nn.Module):
    """k×k conv (no bias, SAME) → frozen BN affine → ReLU6 (when ``act``). ``depthwise``: one filter
    per channel (``feature_group_count = C``). ``x: float32[B, H, W, C] -> [B, H/s, W/s, features]``."""

    features: int
    kernel: int = 1
    stride: int = 1
    depthwise: bool = False
    act: bool = True
    pretrained: str = "none"
    zero_scale: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        conv = nn.Conv(self.features, (self.kernel, self.kernel), strides=(self.stride, self.stride),
                       padding="SAME", use_bias=False,
                       feature_group_count=x.shape[-1] if self.depthwise else 1,
                       kernel_init=_init(self, "conv/kernel",
                                         nn.initializers.variance_scaling(2.0 if self.act else 1.0, "fan_in", "normal")),
                       conv_general_dilated=conv_as_slices, name="conv")
        x = conv(x)
        scale = self.param("scale", _init(self, "scale", nn.initializers.zeros if self.zero_scale else nn.initializers.ones),
                           (self.features,))
        bias = self.param("bias", _init(self, "bias", nn.initializers.zeros), (self.features,))
        x = x * scale + bias
        return nn.relu6(x) if self.act else x


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite (Sandler et al. 2018; Lite variant)."""

    expand: int
    features: int
    stride: int
    kernel: int
    pretrained: str = "none"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        c_in = x.shape[-1]
        y = x
        if self.expand != 1:
            y = ConvBN(c_in * self.expand, pretrained=self.pretrained, name="expand")(y)
        y = ConvBN(c_in * self.expand, self.kernel, self.stride, depthwise=True, pretrained=self.pretrained,
                   name="depthwise")(y)
        residual = self.stride == 1 and c_in == self.features
        y = ConvBN(self.features, act=False, pretrained=self.pretrained, zero_scale=residual, name="project")(y)
        return x + y if residual else y


class Stage(nn.Module):
    """``repeats`` MBConvs ``mbconv0 ..``; the first has the stride, the stem in front when ``stem``."""

    expand: int
    features: int
    repeats: int
    stride: int
    kernel: int
    stem: bool = False
    pretrained: str = "none"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.stem:
            x = ConvBN(STEM_CHANNELS, 3, 2, pretrained=self.pretrained, name="stem")(x)
        for i in range(self.repeats):
            x = MBConv(self.expand, self.features, self.stride if i == 0 else 1, self.kernel,
                       pretrained=self.pretrained, name=f"mbconv{i}")(x)
        return x


class EfficientNetLite0(nn.Module):
    """``__call__(images) -> logits float32[B, num_classes]``; ``features(images) -> float32[B, 1280]``."""

    num_classes: int = IMAGENET_CLASSES
    pretrained: str = "none"
    num_blocks: int = len(STAGES) + 1

    def setup(self) -> None:
        for i, stage in enumerate(STAGES):
            setattr(self, f"block{i}", Stage(*stage, stem=i == 0, pretrained=self.pretrained))
        setattr(self, f"block{len(STAGES)}", ConvBN(TOP_CHANNELS, pretrained=self.pretrained))
        imagenet_head = self.pretrained == "imagenet" and self.num_classes == IMAGENET_CLASSES
        self.head = nn.Dense(
            self.num_classes,
            kernel_init=_imagenet_init("head/kernel") if imagenet_head else nn.initializers.lecun_normal(),
            bias_init=_imagenet_init("head/bias") if imagenet_head else nn.initializers.zeros)

    def features(self, images: jnp.ndarray) -> jnp.ndarray:
        if self.pretrained == "imagenet" and images.shape[-1] != 3:
            raise UserError(f"efficientnet_lite0 with ImageNet weights needs RGB inputs, got {images.shape[-1]} "
                            "channel(s): set the suite's input spec to 3 channels (grey is repeated)",
                            field="input")
        x = normalize(images)
        for i in range(self.num_blocks):
            x = getattr(self, f"block{i}")(x)
        return jnp.mean(x, axis=(1, 2))

    def classify(self, features: jnp.ndarray) -> jnp.ndarray:
        return self.head(features)

    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        return self.head(self.features(images))


def efficientnet_lite0(num_classes: int, pretrained: str = "none") -> EfficientNetLite0:
    """The registry's constructor: checks ``pretrained`` (a suite's ``backbone.params.pretrained``)."""
    if pretrained not in PRETRAINED:
        raise UserError(f"efficientnet_lite0 pretrained must be one of {list(PRETRAINED)}, got {pretrained!r}",
                        field="backbone_params.pretrained")
    return EfficientNetLite0(num_classes=num_classes, pretrained=pretrained)


def align_images(images: np.ndarray, resolution: int, *, crop: float = 1.0) -> np.ndarray:
    """Bring ``uint8[N, H, W, C]`` images (C = 1 or 3) to the model: ``uint8[N, r, r, 3]``.

    A centred square of ``crop`` × the shorter side is cut (1.0: the largest square; the ImageNet
    evaluation crop is 224/256 = 0.875), resized to ``resolution`` × ``resolution`` bilinearly with
    antialiasing (``jax.image.resize``; only downscaling needs it), rounded back to uint8, and grey
    is repeated to 3 channels. The model normalises (:func:`normalize`) as its first operation, so
    this is its whole input alignment; e.g. 28×28×1 digits at 96 for a CPU, photos at 224.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
        raise ValueError(f"align_images wants uint8[N, H, W, 1 or 3], got {images.dtype}{list(images.shape)}")
    if not 0.0 < crop <= 1.0:
        raise ValueError(f"crop must be in (0, 1], got {crop}")
    n, h, w, c = images.shape
    side = max(1, round(min(h, w) * crop))
    top, left = (h - side) // 2, (w - side) // 2
    square = jnp.asarray(images[:, top:top + side, left:left + side, :], jnp.float32)
    resized = jax.image.resize(square, (n, resolution, resolution, c), "bilinear", antialias=True)
    out = np.asarray(jnp.clip(jnp.round(resized), 0, 255)).astype(np.uint8)
    return np.repeat(out, 3, axis=-1) if c == 1 else out
