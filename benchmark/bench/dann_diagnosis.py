"""Why DANN barely beats source-only on font_digits -> font_digits_m: a diagnosis, not a tuning.

``python -m benchmark.bench.dann_diagnosis`` trains source_only and three DANN variants
(defaults; 3x the steps; backbone learning rate x0.1) with no target labels, 3 seeds, the
configuration of ``python -m benchmark.engine.measure strategies``, and prints per-seed accuracy
with the final domain-discriminator accuracy and the proxy A-distance each run records.
Measured 2026-11-23 (2-core VM, quiet): source_only 0.622; DANN defaults 0.635 (discriminator
~0.61 at the end, A-distance 1.21 vs 1.11 for source_only); 1,200 steps 0.630; backbone lr x0.1
0.654 (paired gain over source_only +0.043/+0.025/+0.028, A-distance 0.93). DANN here starts
from the pretrained source (Ganin et al. train jointly from scratch), and at the full backbone
rate the adversarial updates disturb the features faster than they align them.
"""


from __future__ import annotations

import time

import numpy as np

from benchmark.cellspec import CellSpec, InputSpec
from benchmark.engine import run_cell

BASE = dict(source="font_digits", target="font_digits_m", labels_per_class=0,
            input_spec=InputSpec(28, 28, 1), backbone="lenet", backbone_params={"width": 16},
            pretrain={"steps": 1500})
VARIANTS = [  # (strategy, strategy_params, train schedule)
    ("source_only", {}, {"steps": 400}),
    ("dann", {}, {"steps": 400}),
    ("dann", {}, {"steps": 1200}),
    ("dann", {"backbone_lr_scale": 0.1}, {"steps": 400}),
]


def main(seeds: tuple[int, ...] = (0, 1, 2)) -> None:
    for strategy, params, train in VARIANTS:
        spec = CellSpec(strategy=strategy, strategy_params=params, train=train, **BASE)
        start = time.perf_counter()
        results = run_cell(spec, list(seeds))
        accuracy = [r.accuracy for r in results]
        extras = [{k: round(float(v), 3) for k, v in r.extras.items()
                   if k in ("final_domain_accuracy", "proxy_a_distance")} for r in results]
        print(f"{strategy} {params} {train}: accuracy {np.round(accuracy, 3)} "
              f"mean {np.mean(accuracy):.3f} {extras} ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
