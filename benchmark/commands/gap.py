"""``tbench gap SOURCE TARGET``: domain-gap and transferability measures of one pair, as a table.

The model is a suite's (``--suite S``: its input, backbone and pretraining schedule) or given
with ``--backbone`` / ``--width`` / ``--input`` / ``--pretrain-steps`` (engine defaults
otherwise). The pretrained source model comes from the checkpoint cache (trained now if
missing). Train splits only; see :mod:`benchmark.measures`.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from benchmark.errors import UserError

# Which way is "closer / more transferable" for each measure, shown beside its value.
_DIRECTION = {
    "proxy_a_distance": "lower = closer (0 indistinguishable, 2 separable)",
    "mmd2_rbf": "lower = closer",
    "frechet_distance": "lower = closer",
    "leep": "higher = more transferable (≤ 0)",
    "logme": "higher = more transferable",
    "nce": "higher = more transferable (≤ 0)",
    "h_score": "higher = more transferable",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gap", help="domain-gap and transferability measures of a source -> target pair")
    p.add_argument("source", help="source dataset, e.g. font_digits or font_digits@label_permutation=1")
    p.add_argument("target", help="target dataset, e.g. uci_digits")
    p.add_argument("--suite", help="take input, backbone and pretraining from this suite YAML")
    p.add_argument("--backbone", help="model name (default: lenet)")
    p.add_argument("--width", type=int, help="backbone width parameter (default: the model's)")
    p.add_argument("--input", help="input spec HxWxC (default: 28x28x1)")
    p.add_argument("--pretrain-steps", type=int, help="source pretraining steps (default: the engine's)")
    p.add_argument("--seed", type=int, default=0, help="source model seed and subsample seed (default: 0)")
    p.add_argument("--data-dir", help="prepared datasets directory (default: $TBENCH_DATA_DIR)")
    p.add_argument("--store", help="also record the measures in this results store")
    p.set_defaults(func=_gap)


def _parse_input(text: str):
    from benchmark.cellspec import InputSpec

    match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*", text)
    if not match or 0 in (h := tuple(int(g) for g in match.groups())):
        raise UserError(f"expected HEIGHTxWIDTHxCHANNELS like 28x28x1, got {text!r}", field="--input")
    return InputSpec(*h)


def pair_spec(args: argparse.Namespace):
    """The CellSpec whose model the measures use (strategy and budget do not matter)."""
    from benchmark.cellspec import ALL_LABELS, CellSpec, InputSpec

    model_options = [o for o in ("backbone", "width", "input", "pretrain_steps") if getattr(args, o) is not None]
    if args.suite:
        if model_options:
            flags = ", ".join("--" + o.replace("_", "-") for o in model_options)
            raise UserError(f"{flags} cannot be combined with --suite (the suite fixes the model); "
                            "drop one of them", field="--suite")
        from benchmark.config import load_suite

        suite = load_suite(args.suite)
        return CellSpec(source=args.source, target=args.target, strategy="linear_probe",
                        labels_per_class=ALL_LABELS, input_spec=suite.input_spec, backbone=suite.backbone,
                        backbone_params=dict(suite.backbone_params), pretrain=dict(suite.pretrain))
    from benchmark import models

    backbone = args.backbone or "lenet"
    if backbone not in models.names():
        raise UserError(f"unknown backbone {backbone!r}; choose one of {', '.join(models.names())}",
                        field="--backbone")
    if args.width is not None and args.width < 1:
        raise UserError(f"must be a positive integer, got {args.width}", field="--width")
    if args.pretrain_steps is not None and args.pretrain_steps < 1:
        raise UserError(f"must be a positive integer, got {args.pretrain_steps}", field="--pretrain-steps")
    return CellSpec(source=args.source, target=args.target, strategy="linear_probe", labels_per_class=ALL_LABELS,
                    input_spec=_parse_input(args.input) if args.input else InputSpec(),
                    backbone=backbone, backbone_params={} if args.width is None else {"width": args.width},
                    pretrain={} if args.pretrain_steps is None else {"steps": args.pretrain_steps})


def _gap(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from benchmark.data import load
    from benchmark.measures import FEATURE_MEASURES, pair_measures

    if args.data_dir:
        os.environ["TBENCH_DATA_DIR"] = str(Path(args.data_dir).expanduser())
    if args.seed < 0:
        raise UserError(f"must be 0 or more, got {args.seed}", field="--seed")
    spec = pair_spec(args)
    for name in (spec.source, spec.target):  # unknown names fail here, before any pretraining
        load(name, split="train", spec=spec.input_spec)
    rows = pair_measures(spec, args.seed)
    values = {(r["space"], r["measure"]): r["value"] for r in rows}
    config = rows[0]["config"]
    table = Table(title=f"{spec.source} -> {spec.target} (seed {args.seed})")
    table.add_column("measure")
    table.add_column("source-model features", justify="right")
    table.add_column("pixels", justify="right")
    table.add_column("reading")
    for measure in FEATURE_MEASURES:
        cells = [values.get((space, measure), "") for space in ("features", "pixels")]
        shown = ["—" if v is None else (f"{v:.4g}" if v != "" else "") for v in cells]
        table.add_row(measure, *shown, _DIRECTION.get(measure, ""))
    console = Console(width=max(100, Console().width))
    console.print(table)
    console.print(f"{config['n_source']} source and {config['n_target']} target train images; "
                  f"{spec.backbone} {spec.backbone_params or ''} on {spec.input_spec.height}x"
                  f"{spec.input_spec.width}x{spec.input_spec.channels}, pretrained "
                  f"{config['pretrain']['steps']} steps", highlight=False)
    if args.store:
        from benchmark.store import Store

        with Store(Path(args.store)) as store:
            store.record_measures(rows)
        console.print(f"recorded {len(rows)} measures in {args.store}", highlight=False)
    return 0
