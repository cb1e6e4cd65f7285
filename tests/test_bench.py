"""``tbench bench``: the harness runs end to end and its references are the engine's model.

Timings are never asserted (they are what the benchmark measures, on noisy machines); what is
asserted is that the contenders train the same model, that trials interleave, and that the
JSON has every key with positive numbers. (The FLOP count is a model's: ``test_models.py``.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest
import tiny
import torch
import yaml

from benchmark import models
from benchmark.bench import timing, torch_reference
from benchmark.bench.executors import ExecutorsConfig
from benchmark.bench.grid_throughput import GridConfig
from benchmark.bench.runner import BenchConfig, run_bench
from benchmark.bench.scaling import ScalingConfig
from benchmark.bench.step import StepConfig
from benchmark.cli import main

TINY_STEP = StepConfig(width=tiny.BACKBONE_PARAMS["width"], batch_size=32, steps=8, seeds=2,
                       num_images=256, repeats=1, matmul_n=128, input_shape=tiny.SPEC.shape)


@pytest.mark.parametrize("width, shape", [(16, (28, 28, 1)), (tiny.BACKBONE_PARAMS["width"], tiny.SPEC.shape)])
def test_torch_reference_is_the_engine_lenet_with_the_same_weights(width, shape):
    model = models.build("lenet", {"width": width}, 10)
    params = jax.jit(lambda key: models.init_params(model, key, shape))(jax.random.key(3))
    twin = torch_reference.load_flax_params(torch_reference.TorchLeNet(10, width, shape), params)
    assert torch_reference.param_count(twin) == models.param_count(params)
    images = np.random.default_rng(0).integers(0, 256, (3, *shape), dtype=np.uint8)
    expected = np.asarray(model.apply({"params": params}, images))
    got = twin(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_trials_interleave_after_warmup():
    calls: list[str] = []
    times = timing.interleave({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                              repeats=3, warmup=1)
    assert calls == ["a", "b", "a", "b", "a", "b", "a", "b"]
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    summary = timing.summarize([2.0, 1.0, 4.0], work=8, unit="images")
    assert (summary["rate"], summary["rate_min"], summary["rate_max"]) == (4.0, 2.0, 8.0)


def _positive_numbers(row: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        assert isinstance(row[key], float) and row[key] > 0, (key, row[key])


def test_step_section_writes_json_with_every_contender(tmp_path):
    config = BenchConfig(TINY_STEP, GridConfig("unused.yaml"), ScalingConfig("unused.yaml"),
                         only=("step",), mode="test")
    out = tmp_path / "bench.json"
    run_bench(config, out, log=lambda _: None)
    result = json.loads(out.read_text())
    assert result["machine"]["backend"] == jax.default_backend()
    assert result["machine"]["versions"]["jax"] == jax.__version__
    step = result["step"]
    assert step["model"]["param_count"] == step["model"]["torch_param_count"] == 4794
    assert set(step["contenders"]) == {"engine", "engine_seeds", "engine_seeds_batched", "flax_tutorial",
                                       "torch_eager"}
    for row in step["contenders"].values():
        _positive_numbers(row, ("rate", "mfu", "median_s"))
        assert len(row["seconds"]) == 1
    _positive_numbers(step["matmul_peak"], ("rate",))
    _positive_numbers(step["flops_per_image"], ("training",))
    assert set(step["ratios"]) >= {"engine_vs_torch_eager", "engine_vs_flax_tutorial"}
    assert result["memory"]["final"]["host_peak_rss_bytes"] > 0
    assert result["targets"]["engine_step_mfu_ge_35pct"]["met"] in (True, False)
    assert "grid" not in result


def _scratch_suite(tmp_path, name: str, labels_per_class: list) -> Path:
    """A tiny suite file: scratch on the tiny target, one seed, the given label budgets."""
    suite = tmp_path / f"{name}.yaml"
    suite.write_text(yaml.safe_dump({
        "name": name, "description": "bench test",
        "input": {"height": tiny.SPEC.height, "width": tiny.SPEC.width, "channels": tiny.SPEC.channels},
        "backbone": {"name": tiny.BACKBONE, "params": dict(tiny.BACKBONE_PARAMS)},
        "sources": [], "targets": [tiny.TARGET], "strategies": ["scratch"],
        "labels_per_class": labels_per_class, "seeds": 1, "train": dict(tiny.TRAIN),
    }))
    return suite


@pytest.mark.slow
def test_grid_and_scaling_sections_run_the_real_runner_and_a_naive_grid(tmp_path):
    suite = _scratch_suite(tmp_path, "benchtiny", [tiny.LABELS_PER_CLASS])
    # The engine's processes share the session's compiled kernels (only the naive run compiles
    # cold, as it must); the measurement itself starts every engine process cold.
    cache = os.environ["TBENCH_JAX_CACHE_DIR"]
    config = BenchConfig(TINY_STEP, GridConfig(str(suite), warmup=False, compilation_cache=cache),
                         ScalingConfig(str(suite), cells=(1,), seeds=(), labels_per_class=(),
                                       compilation_cache=cache),
                         only=("grid", "scaling"), mode="test")
    out = tmp_path / "bench.json"
    run_bench(config, out, log=lambda _: None)
    result = json.loads(out.read_text())
    grid = result["grid"]
    assert grid["config"]["runs"] == 1
    # Finished, not failed: the tiny scratch run ends at chance on its training data, which the
    # divergence watch calls diverged (test_cli_run counts it the same way); timing is the point.
    (status,) = grid["engine"]["trials"][0]["statuses"].items()
    assert status in (("ok", 1), ("diverged", 1))
    assert grid["naive"]["trials"][0]["sampled_runs"] == 1
    _positive_numbers(grid["engine"], ("median_wall_s",))
    assert 0 <= grid["engine"]["median_compile_share"] < 1
    _positive_numbers(grid["naive"], ("median_wall_s", "median_compile_share"))
    _positive_numbers(grid, ("speedup_engine_vs_naive",))
    (point,) = result["scaling"]["cells"]
    assert point["statuses"] in (["ok"], ["diverged"]) and point["seconds_per_cell"] > 0
    assert (tmp_path / result["scaling"]["plot"]).stat().st_size > 0
    assert set(result["targets"]) == {"grid_engine_vs_naive_ge_5x", "grid_engine_compile_share_le_10pct"}


@pytest.mark.slow
def test_executors_section_runs_the_suite_both_ways_and_judges_autos_choice(tmp_path):
    suite = _scratch_suite(tmp_path, "benchexec", [tiny.LABELS_PER_CLASS, "all"])
    executors = ExecutorsConfig(str(suite), compilation_cache=os.environ["TBENCH_JAX_CACHE_DIR"])
    out = tmp_path / "bench.json"
    run_bench(BenchConfig(TINY_STEP, GridConfig("unused.yaml"), ScalingConfig("unused.yaml"),
                          only=("executors",), mode="test", executors=executors), out, log=lambda _: None)
    result = json.loads(out.read_text())
    section = result["executors"]
    assert section["config"]["runs"] == section["config"]["cells"] == 2
    for name in ("local", "processes"):
        (trial,) = section[name]["trials"]
        assert trial["runs"] == 2 and set(trial["statuses"]) <= {"ok", "diverged"}, trial
        _positive_numbers(section[name], ("median_wall_s",))
    ratio = section["local"]["median_wall_s"] / section["processes"]["median_wall_s"]
    assert section["local_vs_processes_wall"] == pytest.approx(ratio)
    assert section["faster"] == ("processes" if ratio > 1 else "local")
    # Two cells are fewer than auto's four per core: it keeps them in one process.
    assert section["auto"]["choice"] == "local" and "2 cell(s)" in section["auto"]["why"]
    assert result["targets"]["executor_auto_picks_the_faster"]["met"] == (section["faster"] == "local")


@pytest.mark.parametrize("argv, field", [(["--only", "nonsense"], "--only"),
                                         (["--only", "step", "-o", "bench.txt"], "-o"),
                                         (["--suite", "no/such.yaml"], "--suite")])
def test_bad_bench_flags_are_user_errors(argv, field, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", *argv]) == 2
    assert field in capsys.readouterr().err
