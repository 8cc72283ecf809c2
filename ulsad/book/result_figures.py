"""The figures of chapters 9-13: the paper's tables, our runs beside them, ablations, baselines and costs.

Every function takes tables (pandas) and returns the matplotlib Figure; which
data, weights and runs a panel shows is the caller's to say (titles, labels,
``note``), never written here.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from ._figure_tools import (add_note, as_array, colours_for, column_labels, legend_below, metric_of, metric_scale,
                            no_ticks, panels_across_or_down, to_numpy_image)
from .analysis import rank_table


def _mark_row(ax, rows, highlight: str | None) -> None:
    """Frame the row of `highlight` (ULSAD) and make its label bold, so the eye finds it in every panel."""
    rows = list(rows)
    if highlight in rows:
        i = rows.index(highlight)
        ax.add_patch(plt.Rectangle((0, i), len(ax.get_xticks()), 1, fill=False, lw=2, ec="black", clip_on=False))
        for label in ax.get_yticklabels():
            if label.get_text() == highlight:
                label.set_fontweight("bold")


def _gap_heatmap(ax, table, highlight: str | None = "ULSAD", vmax: float = 15.0, cbar: bool = True) -> None:
    """The printed values in the cells, coloured by how many points each lies below the best of its column.

    Colouring by the gap rather than the value puts columns with different ranges
    (MVTec LOCO in the 60s-80s, MVTec AD in the 90s) on one scale: dark is best.
    """
    import seaborn as sns

    gap = table.max() - table
    sns.heatmap(gap, annot=table.to_numpy(), fmt=".2f", cmap="YlGn_r", vmin=0, vmax=vmax, ax=ax, cbar=cbar,
                linewidths=0.5, annot_kws={"fontsize": 7}, xticklabels=column_labels(table.columns),
                cbar_kws={"label": "points below the column's best", "extend": "max"} if cbar else None)
    ax.set(xlabel="", ylabel="")
    _mark_row(ax, table.index, highlight)


def plot_paper_table(table, title: str, highlight: str | None = "ULSAD", note: str | None = None) -> plt.Figure:
    """A results table of the paper (methods x columns, percent): the values, and each method's rank per column.

    Left: the values, coloured by the distance to the best of their column.
    Right: the ranks (1 = best) and the mean rank over the columns.
    """
    import seaborn as sns

    ranks = rank_table(table)
    fig, (left, right), across = panels_across_or_down([table.shape[1] + 1, ranks.shape[1] + 1],
                                                       0.45 * len(table) + 2, margin=1.5)
    _gap_heatmap(left, table, highlight)
    left.set_title(title, fontsize=10)
    text = ranks.map(lambda r: "" if np.isnan(r) else f"{r:.0f}")
    text["mean rank"] = ranks["mean rank"].map(lambda r: f"{r:.1f}")
    sns.heatmap(ranks, annot=text.to_numpy(), fmt="", cmap="YlGn_r", vmin=1, vmax=len(table), linewidths=0.5,
                ax=right, annot_kws={"fontsize": 7}, xticklabels=column_labels(ranks.columns),
                yticklabels=False if across else list(ranks.index),
                cbar_kws={"label": "rank (1 = best)"})
    right.set(title="rank (1 = best)", xlabel="", ylabel="")
    _mark_row(right, ranks.index, highlight)
    add_note(fig, note)
    fig.tight_layout()
    return fig


def plot_table_panels(panels: dict, highlight: str | None = "ULSAD", note: str | None = None) -> plt.Figure:
    """Several results tables (title -> methods x columns, percent) side by side, one heatmap each, same rows."""
    first = next(iter(panels.values()))
    fig, axes, across = panels_across_or_down([t.shape[1] for t in panels.values()], 0.4 * len(first) + 2.2)
    for i, (ax, (title, table)) in enumerate(zip(axes, panels.items())):
        _gap_heatmap(ax, table, highlight, cbar=i == len(panels) - 1 or not across)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelrotation=45)
        if i and across:
            ax.set_yticklabels([])
    add_note(fig, note)
    fig.tight_layout()
    return fig


def _metric_heatmap(ax, table, title: str = "", vmin: float = 50, vmax: float = 100) -> None:
    """A table of percentages as a heatmap, the values written in the cells, each column coloured on its
    metric's scale (:func:`._figure_tools.metric_scale`: AUROC about 50, AUPRO from 0 to 100), the metric
    read from the column's label, else from ``title``; one labelled colour bar per metric shown."""
    import seaborn as sns

    table = table.astype(float)
    labels = column_labels(table.columns)
    metrics = np.array([metric_of(label) or metric_of(title) or "" for label in labels])
    for metric in dict.fromkeys(metrics):
        scale = metric_scale(metric or None, vmin, vmax)
        mask = np.broadcast_to(metrics != metric, table.shape)
        sns.heatmap(table, mask=mask, annot=True, fmt=".1f", cmap=scale["cmap"], vmin=scale["vmin"],
                    vmax=scale["vmax"], ax=ax, linewidths=0.5, annot_kws={"fontsize": 8}, xticklabels=labels,
                    cbar_kws={"label": scale["label"], "pad": 0.02})
    ax.set_title(title, fontsize=10)
    ax.set(xlabel="", ylabel="")
    ax.tick_params(axis="y", labelrotation=0)


def plot_run_tables(whole, by_type, note: str | None = None) -> plt.Figure:
    """Our per-category metrics (:func:`.analysis.run_tables`) as two heatmaps, AUROC about 50 = chance,
    AUPRO on its own scale from 0 to 100."""
    # each panel's width in columns: its own, and 0.8 for each colour bar (two metric scales on the left)
    fig, axes, _ = panels_across_or_down([whole.shape[1] + 1.6, by_type.shape[1] + 0.8], 0.4 * len(whole) + 2.2,
                                         margin=2.0)
    for ax, table, title in ((axes[0], whole, "whole test set"), (axes[1], by_type, "image AUROC per kind of anomaly")):
        _metric_heatmap(ax, table, title)
        for x in range(3, table.shape[1], 3):  # separate the metrics (or kinds), each with its three maps
            ax.axvline(x, color="white", lw=3)
        ax.axhline(len(table) - 1, color="black", lw=1.5)  # the mean row below the categories
    add_note(fig, note)
    fig.tight_layout()
    return fig


def plot_run_times(runs, note: str | None = None) -> plt.Figure:
    """Wall time per run of runs.csv: training and evaluation, stacked, one bar per category (and seed)."""
    labels = [f"{c} (seed {s})" if runs["seed"].nunique() > 1 else c for c, s in zip(runs["category"], runs["seed"])]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(runs) + 2))
    ax.barh(labels, runs["train_s"] / 60, label="training (Algorithm 1)")
    ax.barh(labels, runs["eval_s"] / 60, left=runs["train_s"] / 60, label="evaluation")
    ax.invert_yaxis()
    ax.set(xlabel="minutes", title="wall time per run")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)
    add_note(fig, note)
    fig.tight_layout()
    return fig


def plot_metric_heatmaps(panels: dict, vmin: float = 50, vmax: float = 100, note: str | None = None) -> plt.Figure:
    """Tables of percentages (title -> rows x columns) side by side, the values written in the cells; one
    under the other when side by side they would be wider than a page (:func:`._figure_tools.panels_across_or_down`).

    Each column is coloured on the scale of its metric, read from its label or else from its panel's title
    (:func:`._figure_tools.metric_scale`): AUROC diverging about 50, chance; AUPRO from 0 to 100, which
    has no chance level at 50. Every panel has a labelled colour bar per metric it shows; the scales
    cover at least ``vmin`` to ``vmax``, so that a panel of our runs and one of the paper's read alike.
    """
    bars = [len({metric_of(label) or metric_of(title) for label in column_labels(t.columns)})
            for title, t in panels.items()]
    widths = [t.shape[1] + 1.2 * n for t, n in zip(panels.values(), bars)]
    rows = max(len(t) for t in panels.values())
    fig, axes, _ = panels_across_or_down(widths, 0.38 * rows + 2.2)
    for ax, (title, table) in zip(axes, panels.items()):
        _metric_heatmap(ax, table, title, vmin, vmax)
        ax.tick_params(axis="x", labelrotation=45)
    add_note(fig, note)
    fig.tight_layout()
    return fig


def plot_claim_effects(effects, metrics, sources: dict, errors: dict | None = None,
                       note: str | None = None) -> plt.Figure:
    """The paper's ablation claims as paired differences: one row of panels per claim, one column per metric.

    ``effects`` has columns claim, pair (e.g. "row 4 - row 2"), metric, and one column of
    differences (percentage points) per source; ``sources`` maps those columns to their
    legend labels, which say where each came from (e.g. our runs' data and weights, the
    paper's table). A bar above 0 means the component helped in that pair of Table 3 rows.
    ``errors`` maps a source column to the column of its spread (e.g. the std over seeds), drawn
    as an error bar.
    """
    errors = errors or {}
    claims = list(dict.fromkeys(effects["claim"]))
    colours = ("tab:blue", "tab:gray", "tab:orange", "tab:green")
    width = 0.8 / len(sources)
    fig, axes = plt.subplots(len(claims), len(metrics), figsize=(3.6 * len(metrics), 2.4 * len(claims) + 0.4),
                             squeeze=False, sharey="row", layout="constrained")
    for (i, claim), (j, metric) in ((c, m) for c in enumerate(claims) for m in enumerate(metrics)):
        ax = axes[i][j]
        part = effects[(effects["claim"] == claim) & (effects["metric"] == metric)]
        x = np.arange(len(part))
        for k, (column, label) in enumerate(sources.items()):
            ax.bar(x + (k - (len(sources) - 1) / 2) * width, part[column], width, label=label, color=colours[k],
                   yerr=part[errors[column]] if column in errors else None, capsize=2)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, part["pair"], fontsize=7, rotation=20)
        ax.set_title(f"{claim}\n{metric}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    legend_below(fig, axes)
    for row in axes:
        row[0].set_ylabel("difference (points)")
    add_note(fig, note)
    return fig


def plot_alpha_beta(grid, metrics: dict, paper_point=(0.9, 0.995), note: str | None = None) -> plt.Figure:
    """Fig. 7: one heatmap per metric over the (α, β) grid (percent), the paper's choice framed.

    ``grid`` is :func:`ulsad.evaluate.alpha_beta_grid`'s table; ``metrics`` maps its columns to titles.
    Cells with α ≥ β are empty: Eq. (9) needs q_α < q_β. The grid must hold the paper's point.
    The colours are the difference to the paper's point (white), on a scale of at least ±5 points,
    so that a spread of a tenth of a point does not look like a large one.
    """
    import seaborn as sns

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, (column, title) in zip(axes[0], metrics.items()):
        table = grid.pivot(index="alpha", columns="beta", values=column).astype(float) * 100
        i, j = list(table.index).index(paper_point[0]), list(table.columns).index(paper_point[1])
        centre = table.iloc[i, j]
        half = max(5.0, np.nanmax(np.abs(table.to_numpy() - centre)))
        sns.heatmap(table, annot=True, fmt=".1f", cmap="RdBu", center=centre, vmin=centre - half,
                    vmax=centre + half, ax=ax, annot_kws={"fontsize": 8}, linewidths=0.5,
                    cbar_kws={"label": f"{title} (%): white = the paper's α, β"})
        ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, lw=2.5, ec="black"))
        spread = np.nanmax(table.to_numpy()) - np.nanmin(table.to_numpy())
        ax.set_title(f"{title}\n(spread {spread:.1f} points; framed: the paper's α, β)", fontsize=9)
        ax.set(xlabel="β", ylabel="α")
    add_note(fig, note)
    fig.tight_layout()
    return fig


def plot_lambda_curves(panels: dict, note: str | None = None) -> plt.Figure:
    """Table 21: metrics against λ_l, one panel per source (title -> DataFrame indexed by λ_l, percent)."""
    colours = colours_for(c for t in panels.values() for c in t.columns)  # a metric keeps its colour across panels
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False, layout="constrained")
    for ax, (title, table) in zip(axes[0], panels.items()):
        for column in table.columns:
            ax.plot(table.index, table[column], marker="o", label=column, color=colours[column])
        ax.set(title=title, xlabel=r"$\lambda_l$ (weight of the direction term $l_d$)", ylabel="percent")
        ax.grid(alpha=0.3)
    legend_below(fig, axes, ncols=5)
    add_note(fig, note)
    return fig


def plot_curves_against_references(curves, column: str, references, ylabel: str,
                                   note: str | None = None) -> plt.Figure:
    """One panel per category: ``column`` against epochs, a line per ``run``, and each reference method
    as a dashed level line in its colour, to see whether more training or more channels close a gap.

    curves: one row per evaluation with ``category``, ``run``, ``epoch`` and ``column`` (fractions).
    references: one row per (category, method) with ``value`` in percent.
    Each panel's legend, under it, gives its references' values.
    """
    categories = list(dict.fromkeys(curves["category"]))
    colours = colours_for([*curves["run"], *references["method"]])
    fig, axes = plt.subplots(1, len(categories), figsize=(4.4 * len(categories), 4.2), squeeze=False,
                             layout="constrained")
    for ax, category in zip(axes[0], categories):
        for run, rows in curves[curves["category"] == category].groupby("run", sort=False):
            ax.plot(rows["epoch"], 100 * rows[column], marker="o", label=run, color=colours[run])
        for row in references[references["category"] == category].itertuples():
            ax.axhline(row.value, color=colours[row.method], ls="--", lw=1.2, label=f"{row.method}: {row.value:.1f}")
        ax.set(title=category, xlabel="epoch", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, frameon=False)
    add_note(fig, note)
    return fig


def _bar_labels(labels, groups: int) -> tuple[list[str], float]:
    """Group labels that never overlap their neighbours: up to four groups, wrapped to lines of 12 characters;
    more, on one line each, turned by 30° (parallel lines, as far apart as a line is high)."""
    if groups > 4:
        return list(labels), 30
    return [textwrap.fill(label, 12) for label in labels], 0


def plot_grouped_bars(panels: dict, ylim=(0, 100), note: str | None = None,
                      errors: dict | None = None) -> plt.Figure:
    """Fig. 8 style: one panel per source (title -> rows x metrics, percent), a group of bars per metric,
    each row (method, variant, backbone) in its colour of the whole book (:func:`._figure_tools.colours_for`).

    ``errors`` (title -> a table like the panel's, e.g. the std over seeds) draws error bars. Bars are
    lengths and start at 0 whatever ``ylim`` says (its upper end is used); over each AUROC group a dotted
    line marks 50, chance. One legend, under the panels.
    """
    errors = errors or {}
    colours = colours_for(name for table in panels.values() for name in table.index)
    groups = max(table.shape[1] for table in panels.values())
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.2, 1.2 * groups) * len(panels), 4.0), squeeze=False,
                             layout="constrained")
    for ax, (title, table) in zip(axes[0], panels.items()):
        x = np.arange(table.shape[1])
        width = 0.8 / len(table)
        spread = errors.get(title)
        for k, (name, values) in enumerate(table.iterrows()):
            ax.bar(x + (k - (len(table) - 1) / 2) * width, values.astype(float), width, label=str(name),
                   color=colours[name], yerr=None if spread is None else spread.loc[name, table.columns].astype(float),
                   capsize=2, error_kw={"lw": 0.8})
        chance = [i for i, label in enumerate(column_labels(table.columns)) if metric_of(label) == "AUROC"]
        if chance:
            ax.hlines([50] * len(chance), np.array(chance) - 0.45, np.array(chance) + 0.45, color="black", lw=0.9,
                      ls=":", label="50: chance (AUROC)")
        labels, rotation = _bar_labels(column_labels(table.columns), len(x))
        ax.set_xticks(x, labels, rotation=rotation, ha="right" if rotation else "center")
        ax.set(title=title, ylabel="percent" + (" (mean ± std over seeds)" if spread is not None else ""),
               ylim=(0, ylim[1]))
        ax.grid(axis="y", alpha=0.3)
    legend_below(fig, axes)
    add_note(fig, note)
    return fig


def plot_cost_curves(table, panels: dict, labels: dict | None = None, note: str | None = None) -> plt.Figure:
    """Measured costs against the training-set size, one line per method.

    table: one row per (method, n_train) with the columns named in panels (column -> (title, log y)).
    labels: method -> legend label.
    """
    labels = {method: (labels or {}).get(method, method) for method in table["method"].unique()}
    colours = colours_for(labels.values())
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.7), squeeze=False, layout="constrained")
    for ax, (column, (title, log)) in zip(axes[0], panels.items()):
        for method, rows in table.sort_values("n_train").groupby("method", sort=False):
            ax.plot(rows["n_train"], rows[column], marker="o", label=labels[method], color=colours[labels[method]])
        ax.set(title=title, xlabel="normal training images", xscale="log", yscale="log" if log else "linear")
        ax.set_xticks(sorted(table["n_train"].unique()), [str(n) for n in sorted(table["n_train"].unique())])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    legend_below(fig, axes)
    add_note(fig, note)
    return fig


def plot_setting_pairs(table, metrics: dict, settings: tuple[str, str], note: str | None = None) -> plt.Figure:
    """Two settings of one method side by side, per category: a dot for each, an arrow from the first to
    the second, one panel per metric.

    table: rows = categories, columns = (metric, setting) in percent; a category lacking either
    value is shown with the dot it has and no arrow. metrics: column -> panel title.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.9 * len(metrics), 0.45 * len(table) + 2.0),
                             sharey=True, squeeze=False, layout="constrained")
    colours = colours_for(settings)
    rows = np.arange(len(table))[::-1]  # the first category on top
    for ax, (metric, title) in zip(axes[0], metrics.items()):
        first, second = (table[(metric, s)].to_numpy(dtype=float) for s in settings)
        for y, a, b in zip(rows, first, second):
            if np.isfinite(a) and np.isfinite(b):
                ax.annotate("", xy=(b, y), xytext=(a, y), arrowprops={"arrowstyle": "->", "color": "0.6"})
        for setting, values in zip(settings, (first, second)):
            ax.scatter(values, rows, color=colours[setting], label=setting, zorder=3)
        if "auroc" in str(metric).lower():
            ax.axvline(50, color="black", lw=0.8, ls=":")  # chance for an AUROC (AUPRO has no such line)
        ax.set(title=title, xlabel="percent")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(rows, [str(c) for c in table.index])
    legend_below(fig, axes)
    add_note(fig, note)
    return fig


def plot_method_maps(examples: dict, labels: dict | None = None, note: str | None = None) -> plt.Figure:
    """One row per test image: the image with its mask outlined, then each method's map.

    examples: what :func:`ulsad.book.baseline_experiments.example_maps` returns. Each method has
    one colour scale for all its rows (the methods' scores are not comparable with each other), its
    colour bar under its column, so that a weak response looks weak; a title gives the share of normal
    test images the image outscores, in black when it is at least 90 %.
    """
    methods = list(examples["maps"])
    labels = labels or {}
    n = len(examples["types"])
    fig, axes = plt.subplots(n, 1 + len(methods), figsize=(2.0 * (1 + len(methods)) + 0.3, 2.05 * n + 0.5),
                             squeeze=False, layout="constrained")
    colours = {"logical": "tab:red", "structural": "tab:blue"}
    scale = {m: (float(np.min(v)), float(np.max(v))) for m, v in examples["maps"].items()}
    for i in range(n):
        mask = as_array(examples["masks"][i]) > 0.5
        colour = colours.get(examples["types"][i], "black")
        axes[i, 0].imshow(to_numpy_image(examples["images"][i]))
        axes[i, 0].contour(mask, levels=[0.5], colors=colour, linewidths=1.2)
        axes[i, 0].set_ylabel(examples["types"][i], color=colour)
        for j, method in enumerate(methods, 1):
            ax = axes[i, j]
            method_map = as_array(examples["maps"][method][i])
            ax.imshow(method_map, cmap="inferno", vmin=scale[method][0], vmax=scale[method][1])
            ax.contour(mask, levels=[0.5], colors="cyan", linewidths=0.8)
            share = examples["outscored"][method][i]
            ax.set_title(f"{labels.get(method, method)}: above {share:.0%}", fontsize=8,
                         color="black" if share >= 0.9 else "dimgray")
    for j, method in enumerate(methods, 1):  # the scales differ between methods: one colour bar under each
        fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(*scale[method]), "inferno"), ax=axes[:, j],
                     location="bottom", shrink=0.9, label=f"{labels.get(method, method)} score")
    no_ticks(axes)
    axes[0, 0].set_title("image, mask", fontsize=9)
    add_note(fig, note)
    return fig
