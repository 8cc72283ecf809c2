"""The figures of chapters 1-8: the problem, the data, the features, attention, both branches, training and inference.

Every function takes arrays or tensors and returns the matplotlib Figure; where
the data and weights came from is the caller's ``note``, never written here.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..metrics import aupro, pro_curve
from ._figure_tools import add_note, as_array, colours_for, legend_below, no_ticks, to_numpy_image


KIND_COLOURS = {"good": None, "structural": "tab:blue", "logical": "tab:red"}  # as in the paper's Figure 1


def _show_mask(ax, mask, colour: str | None) -> None:
    """Outline a mask on an image panel and tint its inside (nothing for an empty mask)."""
    mask = as_array(mask) > 0.5
    if colour is None or not mask.any():
        return
    from matplotlib.colors import to_rgba

    tint = np.zeros((*mask.shape, 4))
    tint[mask] = to_rgba(colour, 0.15)
    ax.imshow(tint)
    ax.contour(mask, levels=[0.5], colors=colour, linewidths=1.4)


def plot_examples(rows, kinds, row_titles=None, show_masks: bool = True,
                  note: str | None = None) -> plt.Figure:
    """A grid of examples in the style of the paper's Figure 1: one row per category.

    rows: a list of rows, each a list of (image, mask) pairs, one per entry of `kinds`
    (e.g. "good", "structural", "logical"); images are 3 x S x S tensors in [0, 1] or
    S x S x 3 arrays, masks S x S. Each anomaly is outlined and tinted on its image
    (structural in blue, logical in red, as in Figure 1); with `show_masks` each image
    is followed by its ground-truth mask. `note`, when given, is printed above the grid.
    """
    per = 2 if show_masks else 1
    n_rows, n_cols = len(rows), per * len(kinds)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.75 * n_cols + 0.4, 1.8 * n_rows + 0.5),
                             squeeze=False, layout="constrained")
    for i, row in enumerate(rows):
        for j, (kind, (image, mask)) in enumerate(zip(kinds, row)):
            ax = axes[i, per * j]
            ax.imshow(to_numpy_image(image))
            _show_mask(ax, mask, KIND_COLOURS.get(kind, "tab:red"))
            if i == 0:
                ax.set_title(kind if kind != "good" else "normal", fontsize=10,
                             color=KIND_COLOURS.get(kind) or "black")
            if show_masks:
                axes[i, per * j + 1].imshow(as_array(mask), cmap="gray", vmin=0, vmax=1)
                if i == 0:
                    axes[i, per * j + 1].set_title("its mask", fontsize=9, color="dimgray")
        if row_titles:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=10)
    no_ticks(axes)
    add_note(fig, note)
    return fig


def plot_rules(rows: dict, note: str | None = None) -> plt.Figure:
    """One row per category: a normal image, then one image per logical rule it can break.

    rows: {category: [(title, image, mask), ...]}, rows of any length; masks
    (S x S, empty for a normal image) are outlined in the logical anomalies' red.
    """
    n_cols = max(len(row) for row in rows.values())
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.9 * n_cols + 0.4, 1.95 * len(rows) + 0.5),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.set_axis_off()
    for i, (category, row) in enumerate(rows.items()):
        for j, (title, image, mask) in enumerate(row):
            ax = axes[i, j]
            ax.set_axis_on()
            ax.imshow(to_numpy_image(image))
            _show_mask(ax, mask, KIND_COLOURS["logical"])
            ax.set_title(title, fontsize=9, color=KIND_COLOURS["logical"] if j else "black")
            no_ticks(ax)
        axes[i, 0].set_ylabel(category, fontsize=10)
    add_note(fig, note)
    return fig


def plot_difficulty(table, detectors=("mean colour", "patch memory", "patch memory 3x3", "whole image",
                                      "layout 4x4 worst cell"),
                    note: str | None = None) -> plt.Figure:
    """Image AUROC of training-free detectors per category, logical anomalies above structural ones.

    table: one row per (category, type) with a column per detector (fractions in [0, 1]);
    detectors the table does not have, and rows of other types (one rule's), are left out.
    """
    detectors = [d for d in detectors if d in table]
    types = ("logical", "structural")
    categories = list(dict.fromkeys(table["category"]))
    fig, axes = plt.subplots(2, 1, figsize=(max(10, 1.1 * len(categories)), 6), sharey=True, layout="constrained")
    width = 0.8 / len(detectors)
    x = np.arange(len(categories))
    for ax, kind in zip(axes, types):
        rows = table[table["type"] == kind].set_index("category").reindex(categories)
        for k, detector in enumerate(detectors):
            ax.bar(x + (k - (len(detectors) - 1) / 2) * width, rows[detector], width, label=detector)
        ax.axhline(0.5, color="gray", linestyle="--", linewidth=1)
        ax.set_xticks(x, categories, rotation=20, fontsize=9)
        ax.set_title(f"normal vs {kind} anomalies", color=KIND_COLOURS[kind])
        ax.set_ylim(0, 1)
        ax.set_ylabel("image AUROC")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncols=len(detectors))
    add_note(fig, note)
    return fig


def plot_ulsad_diagram() -> plt.Figure:
    """The paper's Figure 2 as boxes and arrows: θ, the local branch ψ, the global branch φ, the losses.

    Solid arrows carry tensors forward; the three losses (ovals) compare the tensors
    whose dashed lines meet in them, and at test time the same comparisons give the
    anomaly maps M^l (Eq. 7) and M^g (Eq. 8). The grey box is frozen, coloured ones are trained.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(10, 4.2))
    fig.subplots_adjust(0, 0, 1, 1)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    boxes = {}

    def box(key, x, y, text, colour, w=0.11, h=0.13, round_=0.02):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, fc=colour, ec="0.25", lw=1,
                                    boxstyle=f"round,pad=0,rounding_size={round_}"))
        ax.text(x, y, text, ha="center", va="center", fontsize=9.5)
        boxes[key] = (x, y, w, h)

    def anchor(key, side):
        x, y, w, h = boxes[key]
        return {"left": (x - w / 2, y), "right": (x + w / 2, y),
                "top": (x, y + h / 2), "bottom": (x, y - h / 2)}[side]

    def arrow(a, b, style="-|>", ls="-", colour="0.2", rad=0.0, label=None, side=(0, 0.03), sides=None):
        (xa, ya, _, _), (xb, yb, _, _) = boxes[a], boxes[b]
        # unless `sides` says otherwise, leave each box through the side that faces the other one
        dx, dy = xb - xa, yb - ya
        if sides is None:
            sides = (("right", "left") if dx > 0 else ("left", "right")) if abs(dx) * 0.6 >= abs(dy) else \
                (("top", "bottom") if dy > 0 else ("bottom", "top"))
        start, end = anchor(a, sides[0]), anchor(b, sides[1])
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=colour, lw=1.2,
                                     ls=ls, connectionstyle=f"arc3,rad={rad}"))
        if label:
            ax.text((start[0] + end[0]) / 2 + side[0], (start[1] + end[1]) / 2 + side[1], label,
                    ha="center", va="center", fontsize=8, color="0.3")

    frozen, local, global_, loss = "0.88", "#cfe2f3", "#f4cccc", "#fff2cc"
    box("X", 0.06, 0.5, "image\n$\\mathbf{X}$", "white", w=0.09)
    box("theta", 0.22, 0.74, "$\\theta$ (frozen)\nlayer2 + layer3\n$\\to c^*$, $(\\cdot-\\mu)/\\sigma$",
        frozen, w=0.15, h=0.17)
    box("U", 0.40, 0.74, "$\\mathbf{U}$\n$c^*\\times h^*\\times w^*$", "white", w=0.12)
    box("psi", 0.57, 0.74, "$\\psi$ FRN\n(Sec. 3.2)", local)
    box("U1", 0.74, 0.88, "$\\tilde{\\mathbf{U}}'$", "white", w=0.07, h=0.1)
    box("U2", 0.74, 0.58, "$\\tilde{\\mathbf{U}}''$", "white", w=0.07, h=0.1)
    box("phi", 0.40, 0.22, "$\\phi$ global AE\n(Sec. 3.3)", global_, w=0.13)
    box("Uhat", 0.57, 0.22, "$\\hat{\\mathbf{U}}$", "white", w=0.07, h=0.1)
    box("attn", 0.74, 0.22, "attention\n$\\hat{\\mathbf{A}}$, $\\mathbf{A}$ (Eq. 3, 4)", "white",
        w=0.13, h=0.13)
    box("Lpl", 0.92, 0.88, "$\\mathcal{L}_{pl}(\\tilde{\\mathbf{U}}', \\mathbf{U})$\nEq. 1", loss,
        w=0.14, h=0.13, round_=0.05)
    box("Llg", 0.92, 0.58, "$\\mathcal{L}_{lg}(\\tilde{\\mathbf{U}}'', \\hat{\\mathbf{U}})$\nEq. 6", loss,
        w=0.14, h=0.13, round_=0.05)
    box("Lpg", 0.92, 0.22, "$\\mathcal{L}_{pg}(\\hat{\\mathbf{A}}, \\mathbf{A})$\nEq. 5", loss,
        w=0.14, h=0.13, round_=0.05)

    arrow("X", "theta")
    arrow("theta", "U")
    arrow("U", "psi")
    arrow("psi", "U1")
    arrow("psi", "U2")
    arrow("X", "phi")
    arrow("phi", "Uhat")
    arrow("Uhat", "attn", label="queries", side=(0, 0.035))
    arrow("U", "attn", ls="--", rad=0.0, label="keys, values", side=(0.07, 0.0))
    arrow("U1", "Lpl", style="-", ls="--", label="test: $\\mathbf{M}^l$", side=(0, 0.035))
    arrow("U2", "Llg", style="-", ls="--", label="test: $\\mathbf{M}^g$", side=(0, 0.035))
    arrow("Uhat", "Llg", style="-", ls="--", rad=-0.3, sides=("top", "bottom"))
    arrow("attn", "Lpg", style="-", ls="--")
    ax.text(0.40, 0.95, "local branch: structural anomalies", ha="center", fontsize=10, color="#1c4587")
    ax.text(0.40, 0.04, "global branch: logical anomalies", ha="center", fontsize=10, color="#990000")
    return fig


def plot_receptive_fields(gradients: dict, boxes: dict, decades: int = 6,
                          note: str | None = None) -> plt.Figure:
    """Where one feature position looks in the image: |∂ output / ∂ input| per panel, on a log scale.

    gradients: panel title -> H x W map of input-gradient magnitudes (the empirical
    receptive field); boxes: panel title -> (x0, y0, size) of the analytic (theoretical)
    receptive field in input pixels, drawn as a dashed square. Colours show log10 of the
    gradient relative to its maximum over `decades` decades (black: zero or smaller), so
    that both the full extent and the concentration near the centre are visible.
    """
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, len(gradients), figsize=(3.1 * len(gradients), 3.3), squeeze=False,
                             layout="constrained")
    for ax, (title, grad) in zip(axes[0], gradients.items()):
        g = as_array(grad)
        g = np.log10(np.maximum(g / (g.max() or 1), 10.0 ** (-decades - 1)))
        im = ax.imshow(g, cmap="magma", vmin=-decades, vmax=0)
        if title in boxes:
            x0, y0, size = boxes[title]
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), size, size, fill=False, ec="cyan", ls="--", lw=1.2))
        ax.set_title(title, fontsize=9)
        no_ticks(ax)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="log10 |gradient| / max")
    add_note(fig, note)
    return fig


def plot_channel_statistics(stats: dict, boundaries=(), note: str | None = None) -> plt.Figure:
    """Per-channel mean (line) and mean ± one standard deviation (band) of feature maps, one panel per entry.

    stats: title -> (mean, std), each of length c*; `boundaries` are channel positions
    drawn as dashed vertical lines (e.g. where one backbone layer's channels end).
    """
    fig, axes = plt.subplots(1, len(stats), figsize=(5 * len(stats), 3), squeeze=False, layout="constrained")
    for ax, (title, (mean, std)) in zip(axes[0], stats.items()):
        mean, std = as_array(mean), as_array(std)
        channels = np.arange(len(mean))
        ax.fill_between(channels, mean - std, mean + std, step="mid", color="tab:orange", alpha=0.4,
                        label="mean ± std")
        ax.step(channels, mean, where="mid", color="tab:blue", lw=1, label="mean")
        for b in boundaries:
            ax.axvline(b - 0.5, color="k", lw=0.8, ls="--")
        ax.axhline(0, color="gray", lw=0.6)
        ax.set(title=title, xlabel="channel", xlim=(-0.5, len(mean) - 0.5))
    axes[0][0].set_ylabel("feature value")
    legend_below(fig, axes)
    add_note(fig, note)
    return fig


def plot_feature_pca(images, rgb, titles=None, note: str | None = None) -> plt.Figure:
    """Images (top row) above their patch features as colours (bottom row): PCs 1-3 as RGB.

    images: N x 3 x S x S in [0, 1]; rgb: N x h x w x 3 in [0, 1] (from :func:`.analysis.feature_pca_rgb`),
    shown at the image size with nearest-neighbour upsampling, so that each patch stays a square.
    """
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.8), squeeze=False, layout="constrained")
    for j in range(n):
        image = to_numpy_image(images[j])
        axes[0, j].imshow(image)
        axes[1, j].imshow(as_array(rgb[j]), extent=(0, image.shape[1], image.shape[0], 0),
                          interpolation="nearest")
        if titles:
            axes[0, j].set_title(titles[j], fontsize=9)
    axes[0, 0].set_ylabel("image", fontsize=9)
    axes[1, 0].set_ylabel("features: PC 1-3 as RGB", fontsize=9)
    no_ticks(axes)
    add_note(fig, note)
    return fig


def plot_attention_maps(images, weights, queries, row_titles=None, log: bool = False, gamma: float = 0.3,
                        note: str | None = None) -> plt.Figure:
    """Figure 5 of the paper: where each query patch attends (Eq. 3), one row per image.

    images: N x 3 x S x S in [0, 1]; weights: N x Q x h x w, the softmax weights of
    query q over all positions p (each map sums to 1); queries: Q (row, col) positions
    on the h x w feature grid. The first column shows the image with every query
    numbered; then one column per query: the weights over the dimmed image with the query
    marked, each map on its own scale, from 0 to its largest weight (the colour bar's 1).
    The query usually holds most of its own weight, so on a linear scale everything else
    would be black: the colours follow the weight to the power ``gamma`` (0.3: a patch
    with a hundredth of the query's weight is a quarter of the way up), or with ``log``
    log10 of the weight over the three decades below the map's maximum.
    """
    from matplotlib.colors import LogNorm, PowerNorm

    weights = as_array(weights)
    n, q_count, h, w = weights.shape
    norm = LogNorm(1e-3, 1) if log else PowerNorm(gamma, 0, 1)
    fig, axes = plt.subplots(n, q_count + 1, figsize=(2.2 * (q_count + 1) + 0.8, 2.3 * n + 0.3), squeeze=False,
                             layout="constrained")
    for i in range(n):
        image = to_numpy_image(images[i])
        size = image.shape[0]
        scale = size / h

        def mark(ax, q, number=None):
            r, c = queries[q]
            ax.add_patch(plt.Rectangle((c * scale - 0.5, r * scale - 0.5), scale, scale, fill=False,
                                       ec="cyan", lw=1.5))
            if number is not None:
                ax.text(c * scale + scale / 2, r * scale - 1, str(number), color="cyan", fontsize=9,
                        ha="center", va="bottom", fontweight="bold")

        axes[i, 0].imshow(image)
        for q in range(q_count):
            mark(axes[i, 0], q, q + 1)
            ax = axes[i, q + 1]
            ax.imshow(0.35 * image.mean(-1), cmap="gray", vmin=0, vmax=1)
            shown = weights[i, q] / weights[i, q].max()
            ax.imshow(shown, cmap="inferno", norm=norm, alpha=0.85, extent=(-0.5, size - 0.5, size - 0.5, -0.5),
                      interpolation="nearest")
            mark(ax, q)
            if i == 0:
                ax.set_title(f"query {q + 1} at {tuple(int(v) for v in queries[q])}", fontsize=9)
        if row_titles:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=9)
    axes[0, 0].set_title("image and queries", fontsize=9)
    no_ticks(axes)
    label = "weight ÷ the map's largest" + (", log scale" if log else f" (colour ∝ weight^{gamma:g})")
    bar = fig.colorbar(plt.cm.ScalarMappable(norm, "inferno"), ax=axes[:, 1:].ravel().tolist(), shrink=0.8,
                       label=label)
    if not log:  # the decades a power scale squeezes together, named
        bar.set_ticks([0, 0.001, 0.01, 0.1, 0.5, 1], labels=["0", "0.001", "0.01", "0.1", "0.5", "1"])
    add_note(fig, note)
    return fig


def plot_direction_experiment(dims, l2_ratio, auroc_l2, auroc_cos) -> plt.Figure:
    """Chapter 5's experiment over the dimension d (log scale).

    Left: max / min pairwise ℓ2 distance of random vectors, which falls towards 1
    as d grows (distance concentration). Right: how well the ℓ2 distance and the
    cosine distance tell pairs of the same pattern from pairs of different
    patterns when the vectors' norms vary (AUROC; 0.5 is chance).
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(dims, l2_ratio, "o-", color="tab:blue")
    left.axhline(1, color="gray", lw=0.8, ls="--")
    left.set(xscale="log", xlabel="dimension d", ylabel="max / min pairwise ℓ2 distance",
             title="ℓ2 distances concentrate")
    left.set_xticks(dims, [str(d) for d in dims], fontsize=8)
    right.plot(dims, auroc_l2, "o-", label="ℓ2 distance (value)", color="tab:blue")
    right.plot(dims, auroc_cos, "s-", label="1 - cos (direction)", color="tab:orange")
    right.axhline(0.5, color="gray", lw=0.8, ls="--")
    right.set(xscale="log", xlabel="dimension d", ylabel="AUROC: same vs other pattern",
              ylim=(0.45, 1.02), title="direction separates patterns of any norm")
    right.set_xticks(dims, [str(d) for d in dims], fontsize=8)
    right.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_value_histograms(values: dict, bins: int = 80, xlabel: str = "value",
                          note: str | None = None) -> plt.Figure:
    """Density histograms of tensors (name -> values), one panel each on shared axes, each titled with its
    share of negative entries.

    Entries piled up on one value (a ReLU's zeros: more than 5 % of them equal) are a point mass, not a
    density: drawn to scale, its bar would flatten every other curve. The y axis therefore ends above the
    densities of the other bins, and the clipped bar is labelled with the share of entries it holds.
    `note`, when given, is printed above the plot (the book passes its provenance line).
    """
    arrays = {name: as_array(v).ravel() for name, v in values.items()}
    colours = colours_for(arrays)
    lo = min(np.percentile(a, 0.5) for a in arrays.values())
    hi = max(np.percentile(a, 99.5) for a in arrays.values())
    edges = np.linspace(lo, hi, bins + 1)
    fig, axes = plt.subplots(1, len(arrays), figsize=(3.2 * len(arrays) + 0.4, 3.0), sharex=True, sharey=True,
                             layout="constrained", squeeze=False)
    masses, top = {}, 0.0
    for ax, (name, a) in zip(axes[0], arrays.items()):
        # the 1 % of entries beyond the axis are left out, not piled into the end bins
        density, _, _ = ax.hist(a, bins=edges, density=True, histtype="stepfilled",
                                alpha=0.35, color=colours[name], edgecolor=colours[name], lw=1.4)
        value, share = point_mass(a)
        if share > 0.05:
            shown = np.clip(value, lo, hi)
            masses[ax] = (value, share, shown)
            density = np.delete(density, min(np.searchsorted(edges, shown, "right") - 1, bins - 1))
        top = max(top, density.max())
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"{name}\n{np.mean(a < 0):.0%} negative", fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0][0].set_ylabel("density")
    axes[0][0].set_ylim(0, 1.35 * top)
    for ax, (value, share, shown) in masses.items():
        ax.annotate(f"{share:.0%} of the entries\nexactly {value:g} (bar clipped)", xy=(shown, 1.3 * top),
                    xytext=(0.97, 0.9), textcoords="axes fraction", ha="right", va="top", fontsize=8,
                    arrowprops={"arrowstyle": "->", "lw": 0.8})
    add_note(fig, note)
    return fig


def point_mass(a: np.ndarray) -> tuple[float, float]:
    """The value most entries of ``a`` equal exactly, and their share."""
    values, counts = np.unique(a, return_counts=True)
    return float(values[counts.argmax()]), float(counts.max() / a.size)


def plot_map_grid(images, masks, maps: dict, row_titles=None, vmax: float | None = 0.3,
                  cmap: str = "inferno", label: str = "normalised score", vmin: float = 0.0,
                  note: str | None = None) -> plt.Figure:
    """Figure 6 of the paper: one row per image: the image (ground truth outlined), its mask, then each map.

    images: N x 3 x S x S in [0, 1]; masks: N x S x S; maps: column title -> N x S x S
    (None entries are left blank). All maps share one colour scale from `vmin` to `vmax`
    (None: the largest value shown), labelled `label` on the colour bar. `note`, when given, is printed above the grid.
    """
    n = len(images)
    names = list(maps)
    arrays = {k: None if v is None else as_array(v) for k, v in maps.items()}
    if vmax is None:
        vmax = max(float(a.max()) for a in arrays.values() if a is not None)
    fig, axes = plt.subplots(n, 2 + len(names), figsize=(2.1 * (2 + len(names)) + 0.6, 2.1 * n + 0.3),
                             squeeze=False, layout="constrained")
    for i in range(n):
        mask = as_array(masks[i])
        axes[i, 0].imshow(to_numpy_image(images[i]))
        if mask.any():
            axes[i, 0].contour(mask, levels=[0.5], colors="cyan", linewidths=0.8)
        axes[i, 1].imshow(mask, cmap="gray", vmin=0, vmax=1)
        for j, name in enumerate(names):
            if arrays[name] is not None:
                axes[i, 2 + j].imshow(arrays[name][i], cmap=cmap, vmin=vmin, vmax=vmax)
        axes[i, 0].set_ylabel(row_titles[i] if row_titles else "", fontsize=10)
    for j, title in enumerate(["image", "ground truth", *names]):
        axes[0, j].set_title(title, fontsize=10)
    im = plt.cm.ScalarMappable(plt.Normalize(vmin, vmax), cmap)
    no_ticks(axes)
    fig.colorbar(im, ax=axes[:, -1].tolist(), shrink=0.8, label=label)
    add_note(fig, note)
    return fig


def plot_loss_history(history, terms=("L_pl", "L_pg", "L_lg", "total"), note: str | None = None) -> plt.Figure:
    """Mean loss per epoch of each term in a training history (a list of dicts, as `fit` returns).

    `note`, when given, is printed above the plots.
    """
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 3), squeeze=False)
    titles = {"L_pl": r"$\mathcal{L}_{pl}$ (Eq. 1)", "L_pg": r"$\mathcal{L}_{pg}$ (Eq. 5)",
              "L_lg": r"$\mathcal{L}_{lg}$ (Eq. 6)"}
    for ax, term in zip(axes[0], terms):
        ax.plot(epochs, [h.get(term, np.nan) for h in history], marker=".", lw=1.2)
        ax.set(title=titles.get(term, term), xlabel="epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean loss over the epoch")
    add_note(fig, note)
    fig.tight_layout()
    return fig


def plot_term_curves(histories: dict, term: str = "L_pl", floors: dict | None = None,
                     note: str | None = None) -> plt.Figure:
    """One loss term per epoch for several trainings (name -> `fit`'s history) on one axis, each with
    its floor (name -> value) as a dashed line of the same colour where one is given."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    colours = colours_for(histories)
    for name, history in histories.items():
        colour = colours[name]
        ax.plot([h["epoch"] for h in history], [h[term] for h in history], marker=".", lw=1.2, color=colour,
                label=name)
        if floors and name in floors:
            ax.axhline(floors[name], color=colour, ls="--", lw=1, label=f"{name}: floor of $l_v$")
    ax.set(xlabel="epoch", ylabel=f"mean {term} over the epoch", ylim=(0, None))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    add_note(fig, note)
    fig.tight_layout()
    return fig


def plot_learning_curves(curves, panels: dict, note: str | None = None) -> plt.Figure:
    """Metrics against epochs, one panel per column of ``panels`` (column -> title), one line per run.

    ``curves``: one row per evaluation, with ``epoch``, a ``run`` label and the panels' columns
    (fractions are drawn in percent).
    """
    colours = colours_for(curves["run"])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.7), squeeze=False, layout="constrained")
    for ax, (column, title) in zip(axes[0], panels.items()):
        for run, rows in curves.groupby("run", sort=False):
            values = rows[column] * (100 if column.endswith(("auroc", "aupro")) else 1)
            ax.plot(rows["epoch"], values, marker=".", lw=1.2, label=run, color=colours[run])
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
    legend_below(fig, axes)
    add_note(fig, note)
    return fig


def plot_score_histograms(scores, types, order=("good", "logical", "structural"), bins: int = 20,
                          title: str = "image scores (Eq. 10)", note: str | None = None) -> plt.Figure:
    """Histograms of image scores as small multiples: one panel per image type of ``order`` (normal first),
    on one score axis, each anomaly type in its colour (:data:`KIND_COLOURS`) over the normal images'
    histogram as a grey outline, so that each kind's overlap with the normal images reads at a glance.

    `note`, when given, is printed above the plot.
    """
    scores, types = as_array(scores), np.asarray(types)
    kinds = [kind for kind in order if (types == kind).any()]
    fig, axes = plt.subplots(len(kinds), 1, figsize=(7, 1.3 * len(kinds) + 1.2), sharex=True, squeeze=False,
                             layout="constrained")
    edges = np.linspace(scores.min(), scores.max(), bins + 1)
    normal = scores[types == "good"]
    for ax, kind in zip(axes[:, 0], kinds):
        colour = KIND_COLOURS.get(kind) or "0.45"
        ax.hist(scores[types == kind], bins=edges, color=colour, alpha=0.7)
        if kind != "good" and len(normal):
            ax.hist(normal, bins=edges, histtype="step", color="0.3", lw=1.2)
        name = "normal" if kind == "good" else kind
        ax.set_ylabel(f"{name}\n({(types == kind).sum()} images)", color=colour, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_title(title + ("; grey outline: the normal images" if len(kinds) > 1 and len(normal) else ""))
    axes[-1, 0].set_xlabel("score")
    add_note(fig, note)
    return fig


def plot_roc_curves(panels: dict, note: str | None = None) -> plt.Figure:
    """ROC curves (sklearn.metrics.roc_curve): panel title -> {curve label -> (labels, scores)}.

    The legend gives each curve's area (sklearn.metrics.auc of the curve); `note`,
    when given, is printed above the panels.
    """
    from sklearn.metrics import auc, roc_curve

    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for label, (y, s) in curves.items():
            fpr, tpr, _ = roc_curve(np.asarray(y), as_array(s))
            ax.plot(fpr, tpr, label=f"{label} ({auc(fpr, tpr):.2f})")
        ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls="--")
        ax.set(title=title, xlabel="false positive rate", aspect="equal")
        ax.legend(loc="lower right", fontsize=8)
    axes[0][0].set_ylabel("true positive rate")
    add_note(fig, note)
    fig.tight_layout()
    return fig


def plot_pro_curves(panels: dict, fpr_limit: float = 0.3, note: str | None = None) -> plt.Figure:
    """PRO curves up to `fpr_limit`: panel title -> {curve label -> (masks, maps)}.

    Each curve is :func:`ulsad.metrics.pro_curve`, exactly the one that
    :func:`ulsad.metrics.aupro` integrates; the legend gives that AUPRO. `note`,
    when given, is printed above the panels.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for label, (m, a) in curves.items():
            m, a = as_array(m), as_array(a)
            ax.plot(*pro_curve(m, a, fpr_limit), label=f"{label} ({aupro(m, a, fpr_limit):.2f})")
        ax.set(title=title, xlabel="false positive rate", xlim=(0, fpr_limit), ylim=(0, 1.02))
        ax.legend(loc="lower right", fontsize=8)
    axes[0][0].set_ylabel("per-region overlap")
    add_note(fig, note)
    fig.tight_layout()
    return fig
