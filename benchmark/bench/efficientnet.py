"""EfficientNet-Lite0 throughput: the Flax model (JAX) against PyTorch eager, same weights and input.

Issue 17: ``tbench bench`` reports the forward and training throughput of the ImageNet backbone
(``benchmark.models.efficientnet_lite0`` with the converted weights of ``benchmark.pretrained``)
against PyTorch eager on the same model and input.

* The model: ``efficientnet_lite0(pretrained="imagenet")`` with a fresh ``num_classes``-way head
  (what a suite's ``sources: [imagenet]`` cell trains). :class:`TorchEfficientNetLite0` is the
  same graph in PyTorch (TF-SAME padding, BN as the frozen per-channel affine the Flax model
  trains, ReLU6, residuals), built from the Flax parameter tree, so both start from identical
  weights; the section records both parameter counts and the largest logit difference on the
  trial images (a check that both compute the same function).
* Forward: ``forward_batches`` batches of ``batch_size`` images per trial, a jitted apply vs
  ``model(x)`` under ``torch.inference_mode()``.
* Training: ``steps`` SGD-momentum steps (same learning rate and momentum, no weight decay) per
  trial on batches drawn by index from the same uint8 images and labels. JAX trains through the
  engine (``Trainer.train`` with the supervised loss, every parameter trained, on the plan it
  chooses for this backend: the ``engine`` contender of :mod:`benchmark.bench.step`); PyTorch
  through :func:`benchmark.bench.torch_reference.training_trial`.
* Threads: PyTorch gets ``torch.set_num_threads(cores)``, the cores XLA:CPU's thread pool uses
  (the schedulable cores, ``machine.usable_cores()``); both numbers are recorded, with
  ``OMP_WAIT_POLICY``. On a loaded machine PyTorch's OpenMP threads spin-wait at every barrier
  unless ``OMP_WAIT_POLICY=PASSIVE`` is set before torch is imported: on the 2-core VM at load
  7–8 (2026-12-02), one forward of batch 32 at 64×64 took 1.3–5.0 s with 2 threads by default,
  0.15–0.21 s with ``PASSIVE`` and 0.14–0.16 s with 1 thread. Set it for a loaded machine.

Per resolution (``resolutions``, square, 3 channels; ``suites/pretrained.yaml`` uses 64): one
warm-up of every trial (JAX compiles; its seconds are recorded), then ``repeats`` interleaved
rounds; medians; ratios JAX / PyTorch of images/s (> 1: JAX faster). Cost of the default
configuration (64 and 128, 5 repeats) on the 2-core VM at load 7–8 with a cold compilation cache:
~8 min and 5.4 GB peak RSS, of which ~3 min compile the engine's training chunk (60–76 s per
resolution; the persistent cache keeps it for the next run).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any

import jax
import numpy as np

from benchmark import models
from benchmark.bench import machine, timing
from benchmark.bench.step import _engine_trial
from benchmark.config.schedule import resolve_train
from benchmark.engine.plan import choose
from benchmark.engine.train import Trainer, compile_seconds
from benchmark.errors import UserError
from benchmark.models.efficientnet_lite0 import MEAN, STAGES, STD

BACKBONE = "efficientnet_lite0"


@dataclasses.dataclass(frozen=True)
class EfficientNetConfig:
    """steps: training steps per trial (rounded up to whole engine chunks). plan: ``None`` for the
    plan the engine chooses on this backend, or ``"simple"`` / ``"fast"`` (``engine.plan.choose``).
    torch_threads: ``None`` for the cores XLA:CPU uses, else that many PyTorch threads."""

    resolutions: tuple[int, ...] = (64, 128)
    batch_size: int = 32
    forward_batches: int = 4
    steps: int = 8
    num_images: int = 256
    num_classes: int = 10
    learning_rate: float = 0.01
    momentum: float = 0.9
    repeats: int = 5
    plan: str | None = None
    torch_threads: int | None = None


def _torch():
    try:
        import torch
    except ImportError:
        raise UserError("the efficientnet section compares against PyTorch, which is not installed: "
                        "pip install 'transferbench[bench,imagenet]'", field="--only") from None
    return torch


def torch_model(params: dict, num_classes: int):
    """:class:`TorchEfficientNetLite0` with the weights of the Flax parameter tree ``params``."""
    torch = _torch()
    from torch import nn
    from torch.nn import functional as F

    def tensor(x: Any) -> torch.Tensor:
        return torch.from_numpy(np.array(x, dtype=np.float32))

    class ConvBN(nn.Module):
        """k×k conv (no bias, TF SAME) → per-channel affine (the frozen BN) → ReLU6 if ``act``."""

        def __init__(self, leaf: dict, stride: int, depthwise: bool, act: bool):
            super().__init__()
            # HWIO → OIHW; a depthwise [k, k, 1, C] becomes [C, 1, k, k].
            self.weight = nn.Parameter(tensor(leaf["conv"]["kernel"]).permute(3, 2, 0, 1).contiguous())
            self.scale = nn.Parameter(tensor(leaf["scale"]))
            self.bias = nn.Parameter(tensor(leaf["bias"]))
            self.stride, self.act = stride, act
            self.groups = self.weight.shape[0] if depthwise else 1

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            k = self.weight.shape[-1]
            if self.stride == 1:
                x = F.conv2d(x, self.weight, padding=k // 2, groups=self.groups)
            else:  # TF SAME at stride 2: the extra pixel at the bottom/right
                ph, pw = (max((math.ceil(n / self.stride) - 1) * self.stride + k - n, 0) for n in x.shape[-2:])
                x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
                x = F.conv2d(x, self.weight, stride=self.stride, groups=self.groups)
            x = x * self.scale[:, None, None] + self.bias[:, None, None]
            return F.relu6(x) if self.act else x

    class MBConv(nn.Module):
        def __init__(self, leaf: dict, stride: int, residual: bool):
            super().__init__()
            self.expand = ConvBN(leaf["expand"], 1, False, True) if "expand" in leaf else None
            self.depthwise = ConvBN(leaf["depthwise"], stride, True, True)
            self.project = ConvBN(leaf["project"], 1, False, False)
            self.residual = residual

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.expand(x) if self.expand is not None else x
            y = self.project(self.depthwise(y))
            return x + y if self.residual else y

    class TorchEfficientNetLite0(nn.Module):
        """``forward(images uint8[B, 3, H, W]) -> logits float32[B, num_classes]``."""

        def __init__(self):
            super().__init__()
            layers = [ConvBN(params["block0"]["stem"], 2, False, True)]
            c_in = params["block0"]["stem"]["scale"].shape[0]
            for s, (_, channels, repeats, stride, _) in enumerate(STAGES):
                for r in range(repeats):
                    first = r == 0
                    layers.append(MBConv(params[f"block{s}"][f"mbconv{r}"], stride if first else 1,
                                         (stride == 1 or not first) and c_in == channels))
                    c_in = channels
            layers.append(ConvBN(params[f"block{len(STAGES)}"], 1, False, True))
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(*np.shape(params["head"]["kernel"]))
            with torch.no_grad():
                self.head.weight.copy_(tensor(params["head"]["kernel"]).T)
                self.head.bias.copy_(tensor(params["head"]["bias"]))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = (images.float() - MEAN) / STD
            return self.head(self.body(x).mean((2, 3)))

    model = TorchEfficientNetLite0()
    if model.head.out_features != num_classes:
        raise ValueError(f"params have a {model.head.out_features}-way head, not {num_classes}")
    return model


def _forward_trials(apply, params: dict, torch_fwd, batches: np.ndarray) -> dict[str, Any]:
    torch = _torch()
    jax_batches = [jax.device_put(b) for b in batches]
    torch_batches = [torch.from_numpy(np.ascontiguousarray(b.transpose(0, 3, 1, 2))) for b in batches]

    def jax_forward() -> None:
        jax.block_until_ready([apply(params, b) for b in jax_batches])

    def torch_forward() -> None:
        with torch.inference_mode():
            for b in torch_batches:
                torch_fwd(b)

    return {"jax_forward": jax_forward, "torch_forward": torch_forward}


def _logit_difference(apply, params: dict, torch_fwd, images: np.ndarray) -> float:
    torch = _torch()
    ours = np.asarray(apply(params, jax.device_put(images)))
    with torch.inference_mode():
        theirs = torch_fwd(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))).numpy()
    return float(np.max(np.abs(ours - theirs)))


def _resolution(config: EfficientNetConfig, resolution: int, params: dict, apply, steps: int,
                trainer: Trainer, threads: int) -> dict[str, Any]:
    from benchmark.bench import torch_reference

    torch = _torch()
    rng = np.random.default_rng(resolution)
    images = rng.integers(0, 256, (config.num_images, resolution, resolution, 3), dtype=np.uint8)
    labels = rng.integers(0, config.num_classes, config.num_images).astype(np.int32)
    forward_images = images[: config.forward_batches * config.batch_size]
    batches = forward_images.reshape(config.forward_batches, config.batch_size, *images.shape[1:])

    forward_twin = torch_model(params, config.num_classes).eval()
    train_twin = torch_model(params, config.num_classes)
    difference = _logit_difference(apply, params, forward_twin, batches[0])
    hp = {**resolve_train({"batch_size": config.batch_size, "learning_rate": config.learning_rate,
                           "momentum": config.momentum, "weight_decay": 0.0, "log_every": steps}),
          "total_steps": 10**6}
    data = {"images": jax.device_put(images), "labels": jax.device_put(labels)}
    trials = {
        **_forward_trials(apply, params, forward_twin, batches),
        "jax_train": _engine_trial(trainer, {"model": params}, data, hp, steps, 1),
        "torch_train": torch_reference.training_trial(train_twin, images, labels, batch_size=config.batch_size,
                                                      learning_rate=config.learning_rate,
                                                      momentum=config.momentum, steps=steps),
    }
    torch.set_num_threads(threads)  # after training_trial, which sets os.cpu_count()
    first: dict[str, dict[str, float]] = {}
    for name, trial in trials.items():
        c0, t0 = compile_seconds(), time.perf_counter()
        trial()
        first[name] = {"first_trial_s": time.perf_counter() - t0, "engine_compile_s": compile_seconds() - c0}
    times = timing.interleave(trials, repeats=config.repeats, warmup=0)
    work = {"jax_forward": forward_images.shape[0], "torch_forward": forward_images.shape[0],
            "jax_train": steps * config.batch_size, "torch_train": steps * config.batch_size}
    rows = {name: {**timing.summarize(t, float(work[name]), "images"), **first[name]} for name, t in times.items()}
    return {
        "resolution": resolution,
        "input_shape": [resolution, resolution, 3],
        "max_abs_logit_difference": difference,
        "contenders": rows,
        "ratios": {"forward_jax_vs_torch": timing.ratio(rows["jax_forward"], rows["torch_forward"]),
                   "train_jax_vs_torch": timing.ratio(rows["jax_train"], rows["torch_train"])},
    }


def run(config: EfficientNetConfig) -> dict[str, Any]:
    """Measure every resolution; returns a JSON-ready dict (see the module docstring)."""
    torch = _torch()
    from benchmark.bench import torch_reference

    plan = choose(jax.default_backend(), config.plan)
    steps = -(-config.steps // plan.chunk_steps) * plan.chunk_steps
    model_key = (BACKBONE, (("pretrained", "imagenet"),), config.num_classes)
    trainer = Trainer(model_key, plan)  # first: it turns on the persistent compilation cache
    model = trainer.model
    # Jitted init (eager flax init compiles op by op); the parameters do not depend on the resolution.
    params = jax.jit(lambda key: models.init_params(model, key, (32, 32, 3)))(jax.random.key(0))
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x))
    jax_threads = machine.usable_cores()
    threads = config.torch_threads or jax_threads
    torch.set_num_threads(threads)
    twin = torch_model(params, config.num_classes)
    results = [_resolution(config, r, params, apply, steps, trainer, threads) for r in config.resolutions]
    return {
        "config": {**dataclasses.asdict(config), "steps_per_trial": steps,
                   "data": "random uint8 images, uniform labels (throughput only)",
                   "optimizer": f"SGD lr={config.learning_rate} momentum={config.momentum}, no weight decay",
                   "weights": "ImageNet (benchmark.pretrained), fresh head"},
        "plan": plan.to_dict(),
        "threads": {"jax": jax_threads, "jax_note": "XLA:CPU's thread pool: the schedulable cores",
                    "torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")},
        "model": {"name": BACKBONE, "pretrained": "imagenet", "num_classes": config.num_classes,
                  "param_count": models.param_count(params), "torch_param_count": torch_reference.param_count(twin)},
        "resolutions": results,
        "ratios": {f"{kind}_{r['resolution']}": r["ratios"][f"{kind}_jax_vs_torch"]
                   for r in results for kind in ("forward", "train")},
        "torch": torch_reference.torch_description(),
    }
