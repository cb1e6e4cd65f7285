"""Statistics over the store's frames: transfer (gain, NTG, CIs, ranks), domain gap, transferability.

numpy / pandas / scipy / scikit-learn only — never JAX — so reports render on any machine.
"""

from benchmark.analysis.gap import GAP_MEASURES
from benchmark.analysis.transferability import TRANSFERABILITY_MEASURES

__all__ = ["GAP_MEASURES", "TRANSFERABILITY_MEASURES"]
