"""Figures for the HTML report, rendered with matplotlib (no pyplot, no display) and seaborn styles.

Every function returns a ``data:image/svg+xml;base64,...`` URI for an ``<img>`` tag, so the report
stays one self-contained file, and no text in a figure (dataset names come from users) can run
as script: browsers never execute scripts in SVG loaded as an image. Math-text parsing is
switched off so a ``$`` in a name is drawn as-is; SVG text is XML-escaped by matplotlib.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from benchmark.analysis.transfer import budget_sort_key, format_budget

_RC = {
    "text.parse_math": False,  # user strings are text, never TeX
    "svg.fonttype": "none",  # keep <text> (smaller, selectable); escaped by matplotlib
    "svg.hashsalt": "transferbench",  # deterministic ids
    "font.size": 9,
}


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(), sns.axes_style("whitegrid"):
        matplotlib.rcParams.update(_RC)
        yield


def _uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def strategy_palette(labels: list[str]) -> dict[str, tuple[float, float, float]]:
    """One stable colour per strategy label (scratch always grey)."""
    others = [label for label in sorted(labels) if label != "scratch"]
    colours = sns.color_palette("colorblind", max(len(others), 1))
    palette = {label: colours[i % len(colours)] for i, label in enumerate(others)}
    palette["scratch"] = (0.35, 0.35, 0.35)
    return palette


def budget_curves(cells: pd.DataFrame, *, max_columns: int = 3) -> str | None:
    """Accuracy (mean, 95% CI band, n) vs target label budget, one panel per (source, target) pair.

    cells: ``cell_summary`` rows. ``scratch`` (no source) is drawn in every panel of its target.
    Returns None when there is nothing to draw.
    """
    cells = cells[cells["n"] > 0]
    pairs = sorted({(s, t) for s, t in zip(cells["source"], cells["target"], strict=True) if s != ""})
    if not pairs:
        pairs = sorted({("", t) for t in cells["target"]})
    if not pairs:
        return None
    budgets = sorted(cells["labels_per_class"].unique(), key=budget_sort_key)
    position = {b: i for i, b in enumerate(budgets)}
    palette = strategy_palette(list(cells["strategy_label"].unique()))
    columns = min(max_columns, len(pairs))
    rows = math.ceil(len(pairs) / columns)
    with _style():
        fig = Figure(figsize=(4.2 * columns, 3.1 * rows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
        for ax, (source, target) in zip(axes, pairs, strict=False):
            panel = cells[(cells["target"] == target) & ((cells["source"] == source) | (cells["source"] == ""))]
            for label, line in panel.groupby("strategy_label"):
                line = line.sort_values("labels_per_class", key=lambda s: s.map(budget_sort_key))
                x = [position[b] for b in line["labels_per_class"]]
                colour = palette[label]
                ns = "/".join(str(n) for n in sorted(set(line["n"])))
                ax.plot(x, line["acc_mean"], marker="o", color=colour, label=f"{label} (n={ns})")
                ax.fill_between(x, line["acc_low"], line["acc_high"], color=colour, alpha=0.18, linewidth=0)
            ax.set_xticks(range(len(budgets)), [format_budget(b) for b in budgets])
            ax.set_title(f"{source} → {target}" if source else target, fontsize=9)
            ax.set_xlabel("target labels per class")
            ax.set_ylabel("target test accuracy")
            ax.legend(fontsize=7, loc="lower right")
        for ax in axes[len(pairs):]:
            ax.set_visible(False)
        return _uri(fig)


def gap_gain_scatter(points: pd.DataFrame, correlations: pd.DataFrame, *, max_columns: int = 3) -> str | None:
    """Measure value vs mean gain over scratch, one panel per (measure, space), colour = strategy.

    points: ``transferability.gain_points`` rows for one budget selection (the report uses the
    gain averaged over budgets); correlations: the matching ``correlate_with_gains`` rows, whose
    Spearman ρ [95% CI] and n per strategy go in the legend.
    """
    if points.empty:
        return None
    panels = sorted(set(zip(points["measure"], points["space"], strict=True)))
    palette = strategy_palette(list(points["strategy_label"].unique()))
    columns = min(max_columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    with _style():
        fig = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
        for ax, (measure, space) in zip(axes, panels, strict=False):
            panel = points[(points["measure"] == measure) & (points["space"] == space)]
            for label, group in panel.groupby("strategy_label"):
                corr = correlations[(correlations["measure"] == measure) & (correlations["space"] == space)
                                    & (correlations["strategy_label"] == label)]
                rho = corr["rho"].iloc[0].format(2) if len(corr) else "n/a"
                ax.scatter(group["value"], group["gain_mean"], color=palette[label], s=22,
                           label=f"{label}: ρ={rho}")
            ax.axhline(0.0, color="black", linewidth=0.8)
            ax.set_title(f"{measure} ({space})", fontsize=9)
            ax.set_xlabel(measure)
            ax.set_ylabel("gain over scratch (mean over budgets)")
            ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        return _uri(fig)


def forgetting_gain_scatter(cells: pd.DataFrame) -> str | None:
    """Mean forgetting (x) vs mean target gain over the comparison arm (y), one point per cell.

    cells: ``analysis.forgetting.forgetting_table`` rows; colour = strategy, whiskers = the 95%
    t-CIs of both means (none where n < 2). Cells without a gain (reference rows) are not drawn;
    None when no cell has both.
    """
    cells = cells[np.isfinite(cells["forgetting_mean"].astype(float)) & np.isfinite(cells["gain_mean"].astype(float))]
    if cells.empty:
        return None
    palette = strategy_palette(list(cells["strategy_label"].unique()))
    with _style():
        fig = Figure(figsize=(6.2, 4.4), layout="constrained")
        ax = fig.subplots()
        for label, group in cells.groupby("strategy_label"):
            x, y = group["forgetting_mean"].astype(float), group["gain_mean"].astype(float)
            xerr = np.nan_to_num(np.abs(np.vstack([x - group["forgetting_low"].astype(float),
                                                   group["forgetting_high"].astype(float) - x])))
            yerr = np.nan_to_num(np.abs(np.vstack([y - group["gain_low"].astype(float),
                                                   group["gain_high"].astype(float) - y])))
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", color=palette[label], ecolor=palette[label],
                        elinewidth=0.8, capsize=2, markersize=5, alpha=0.9, label=f"{label} ({len(group)} cells)")
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("forgetting: source-test accuracy before − after transfer")
        ax.set_ylabel("target gain over the comparison arm")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False, ncol=2)
        return _uri(fig)


def gain_colour(gain: float, scale: float) -> tuple[str, str]:
    """(background, text) CSS colours for a gain on a diverging red (harm) / blue (help) scale."""
    if not np.isfinite(gain):
        return "#eeeeee", "#000000"
    cmap = matplotlib.colormaps["RdBu"]
    r, g, b, _ = cmap(0.5 + 0.5 * float(np.clip(gain / scale, -1, 1)) if scale > 0 else 0.5)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    hexcode = "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in (r, g, b)))
    return hexcode, ("#000000" if luminance > 0.5 else "#ffffff")
