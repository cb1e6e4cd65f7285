"""``tbench bench``: how fast the engine is, measured against references in the same run.

* ``step``: training-step throughput of the engine's kernel vs a Flax-tutorial loop vs PyTorch
  eager on the identical LeNet, and model FLOPs utilisation against a matmul peak;
* ``grid``: wall time of a suite with the engine vs a naive one-process-per-run grid;
* ``scaling``: time per cell as cells, seeds and dataset size grow;
* ``memory``: peak host (and device) memory.

Every comparison interleaves its contenders (A B A B ...) and reports medians and ratios
(``timing.py``). ``runner.run_bench`` writes ``results/bench/<machine>-<date>.json``.
"""
