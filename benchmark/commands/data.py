"""``tbench datasets`` (what can be loaded here) and ``tbench samples`` (a sheet of examples)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list built-in, plugin, catalog and prepared user datasets and whether each is available")
    p.add_argument("--data-dir", default=None, help="prepared TFDS datasets (default: $TBENCH_DATA_DIR or the cache)")
    p.set_defaults(func=_datasets)

    p = sub.add_parser("samples", help="write a PNG grid of examples, one row per dataset (domain)")
    p.add_argument("names", nargs="+", metavar="NAME", help="dataset names, transforms allowed (font_digits@rotate=30)")
    p.add_argument("-o", "--output", required=True, help="PNG file to write")
    p.add_argument("--per-domain", type=int, default=10, help="examples per row (default: %(default)s)")
    p.add_argument("--split", default="train", choices=["train", "test"], help="split to draw from")
    p.add_argument("--data-dir", default=None, help="prepared TFDS datasets (default: $TBENCH_DATA_DIR or the cache)")
    p.set_defaults(func=_samples)


def _datasets(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from benchmark import paths
    from benchmark.data import info, names, user
    from benchmark.data.catalog import build_command

    root = paths.data_dir(args.data_dir)
    table = Table(title=f"datasets (data dir: {root})")
    for column in ("name", "kind", "classes", "shape", "splits", "available"):
        table.add_column(column, overflow="fold")
    unprepared = []
    for name in names():
        meta = info(name, args.data_dir)
        shape = "×".join(str(s) for s in meta.native_shape) if meta.native_shape else "varies"
        splits = ", ".join(f"{s} {n:,}" for s, n in meta.splits.items()) or "?"
        if meta.available:
            status = "[green]yes[/]"
        elif meta.kind == "catalog" and "not prepared" in (meta.unavailable_reason or ""):
            status = "[yellow]not prepared[/] (see below)"
            unprepared.append(name)
        else:
            status = f"[red]no[/]: {meta.unavailable_reason}"
        table.add_row(name, meta.kind, str(meta.num_classes), shape, splits, status)
    console = Console(width=max(Console().width, 120))
    console.print(table)
    copies = user.prepared(root)
    if copies:
        # Below the table: long paths stay on one line, as a user types them in a suite.
        console.print(f"Your own data prepared in {root}:", soft_wrap=True)
        for copy in copies:
            status = {"current": "[green]ready[/]", "stale": "[yellow]changed since[/]: prepared again on next use",
                      "missing": "[red]the source is gone[/]"}[user.status(copy)]
            shape = "×".join(str(s) for s in copy["shape"])
            splits = ", ".join(f"{s} {n:,}" for s, n in copy["splits"].items())
            console.print(f"  {escape(copy['source'])}  ({copy['classes']} classes, {shape}, {splits}): {status}",
                          soft_wrap=True)
    if unprepared:
        console.print(
            "Catalog datasets need a download. On a machine with internet and TensorFlow run, e.g.\n"
            f"  pip install tensorflow-cpu tensorflow-datasets\n  {build_command(unprepared[0], root)}\n"
            "then copy that data dir here; any TFDS dataset prepared as array_record loads by its name.",
            soft_wrap=True,
        )
    console.print(
        "Your own data: name 'folder:PATH' (one sub-folder of images per class) or 'npz:PATH' (arrays x, y) "
        "in a suite, e.g. targets: \\[folder:data/pets]; relative paths are read from the current directory. "
        "See README, 'Your own data'.",
        soft_wrap=True,
    )
    return 0


def _samples(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from benchmark.data import load

    if args.per_domain < 1:
        raise UserError(f"--per-domain must be at least 1, got {args.per_domain}")
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise UserError(f"-o {output}: the sample sheet is a PNG; give a file name ending in .png")
    domains = [load(name, split=args.split, data_dir=args.data_dir) for name in args.names]
    n = args.per_domain
    fig, axes = plt.subplots(len(domains), n, figsize=(n * 0.9 + 1.6, len(domains) * 0.95 + 0.3), squeeze=False)
    for row, domain in zip(axes, domains, strict=True):
        # First examples of each class in turn, so a row shows the label space.
        picks = [int(np.flatnonzero(domain.labels == c % domain.num_classes)[c // domain.num_classes])
                 if np.sum(domain.labels == c % domain.num_classes) > c // domain.num_classes else c
                 for c in range(n)]
        for ax, index in zip(row, picks, strict=True):
            image = domain.images[index]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
            ax.set_title(domain.class_names[domain.labels[index]], fontsize=6, pad=2)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(domain.name, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout(pad=0.3)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    print(f"wrote {output} ({len(domains)} domains × {n} examples, {args.split} split)")
    return 0
