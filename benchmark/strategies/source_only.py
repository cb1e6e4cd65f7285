"""``source_only``: the pretrained source model applied to the target as it is, no training.

The lower reference of unsupervised domain adaptation (Ganin et al. 2016, Table 2 "source
only"). Only defined when source and target share their classes; target labels, if any, are
not used. Source images and the unlabeled target pool are read only to measure the proxy
A-distance of the source features (``extras["proxy_a_distance"]``).
"""

from __future__ import annotations

from benchmark.errors import UserError
from benchmark.strategies.base import FitContext, FitResult, Strategy


def fit(ctx: FitContext) -> FitResult:
    if not ctx.shared_label_space:
        raise UserError("strategy 'source_only' needs a source with the same classes as the target",
                        field="source")
    return FitResult({"model": ctx.source_params}, curve=[])


STRATEGY = Strategy(
    name="source_only",
    fit=fit,
    summary="the source model evaluated on the target, untouched (needs shared classes)",
    uses_source=True,
    uses_source_data=True,
    uses_unlabeled_target=True,
    min_labels_per_class=0,
    records_domain_gap=True,
)
