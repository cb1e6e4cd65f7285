"""``source_only``: the pretrained source model applied to the target as it is, no training.

The lower reference of unsupervised domain adaptation (Ganin et al. 2016, Table 2 "source
only"). Only defined when source and target share their classes; target labels, if any, are
not used, so it is a reference row, never a transfer verdict against scratch (which uses
labels): ``comparison_arm`` is empty. Source images and the unlabeled target pool are read only
to measure the proxy A-distance of the source features (``extras["proxy_a_distance"]``).
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs

DECLARATION = Declaration(
    name="source_only",
    keeps_source_head=True,
    summary="the source model evaluated on the target, untouched (needs shared classes)",
    hooks=f"{__name__}:fit",
    needs=Needs(source_model=True, source_data=True, unlabeled_target=True, shared_label_space=True,
                min_labels_per_class=0),
    comparison_arm="",
    reference_reason=("source_only uses no target labels; scratch at this budget trains on the labels, "
                      "so the difference is not a transfer effect"),
    records_domain_gap=True,
)


def fit(ctx):
    from benchmark.errors import UserError
    from benchmark.strategies.base import FitResult

    if not ctx.shared_label_space:
        raise UserError("strategy 'source_only' needs a source with the same classes as the target",
                        field="source")
    return FitResult({"model": ctx.source_params}, curve=[])
