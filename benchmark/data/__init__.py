"""Datasets: built-in TFDS builders, the user's own data (``folder:PATH``, ``npz:PATH``), plugins,
TFDS catalog datasets, transform specs, input-spec mapping.

```python
from benchmark.data import load, info, names
d = load("font_digits_m@rotate=30", split="train", spec=InputSpec(28, 28, 1))
d.images, d.labels, d.num_classes, d.class_names, d.name
```
See docs/architecture.md § Data for the contract.
"""

from __future__ import annotations

from benchmark.data.datasets import (
    DatasetInfo,
    Domain,
    clear_cache,
    data_version,
    info,
    load,
    names,
    prepare,
)

__all__ = ["DatasetInfo", "Domain", "clear_cache", "data_version", "info", "load", "names", "prepare"]
