"""Figures the book draws, kept here so that chapters stay short and never copy code.

Every function takes arrays or tensors and returns the matplotlib Figure.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_numpy_image(image) -> np.ndarray:
    """3 x H x W tensor in [0, 1] (or H x W x 3 array) -> H x W x 3 array for imshow."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = image.permute(1, 2, 0).numpy() if image.ndim == 3 and image.shape[0] == 3 else image.numpy()
    return np.clip(image, 0, 1)


# -- Chapters 5-8: the branches, training and evaluation ------------------------------------------

def _as_array(x) -> np.ndarray:
    """A tensor or array-like as a float NumPy array on the CPU."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def _note(fig: plt.Figure, note: str | None) -> None:
    """Write a provenance line (where the data and weights come from) at the top of the figure."""
    if note:
        fig.suptitle(note, fontsize=8, color="firebrick")


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
    """Overlaid density histograms of tensors (name -> values), each with its share of negative entries.

    `note`, when given, is printed above the plot (the book passes its provenance line).
    """
    fig, ax = plt.subplots(figsize=(7, 3.2))
    arrays = {name: _as_array(v).ravel() for name, v in values.items()}
    lo = min(np.percentile(a, 0.5) for a in arrays.values())
    hi = max(np.percentile(a, 99.5) for a in arrays.values())
    edges = np.linspace(lo, hi, bins + 1)
    for name, a in arrays.items():
        ax.hist(np.clip(a, lo, hi), bins=edges, density=True, histtype="stepfilled", alpha=0.45,
                label=f"{name}: {np.mean(a < 0):.0%} negative")
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel=xlabel, ylabel="density")
    ax.legend()
    _note(fig, note)
    fig.tight_layout()
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
    _note(fig, note)
    fig.tight_layout()
    return fig


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
    arrays = {k: None if v is None else _as_array(v) for k, v in maps.items()}
    if vmax is None:
        vmax = max(float(a.max()) for a in arrays.values() if a is not None)
    fig, axes = plt.subplots(n, 2 + len(names), figsize=(2.1 * (2 + len(names)) + 0.6, 2.1 * n + 0.3),
                             squeeze=False, layout="constrained")
    for i in range(n):
        mask = _as_array(masks[i])
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
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[:, -1].tolist(), shrink=0.8, label=label)
    _note(fig, note)
    return fig


def plot_score_histograms(scores, types, order=("good", "logical", "structural"), bins: int = 20,
                          title: str = "image scores (Eq. 10)", note: str | None = None) -> plt.Figure:
    """Histograms of image scores, one colour per image type (normal, logical, structural).

    `note`, when given, is printed above the plot.
    """
    scores, types = _as_array(scores), np.asarray(types)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    edges = np.linspace(scores.min(), scores.max(), bins + 1)
    for kind in order:
        if (types == kind).any():
            ax.hist(scores[types == kind], bins=edges, alpha=0.5, label=f"{kind} ({(types == kind).sum()})")
    ax.set(xlabel="score", ylabel="images", title=title)
    ax.legend()
    _note(fig, note)
    fig.tight_layout()
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
            fpr, tpr, _ = roc_curve(np.asarray(y), _as_array(s))
            ax.plot(fpr, tpr, label=f"{label} ({auc(fpr, tpr):.2f})")
        ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls="--")
        ax.set(title=title, xlabel="false positive rate", aspect="equal")
        ax.legend(loc="lower right", fontsize=8)
    axes[0][0].set_ylabel("true positive rate")
    _note(fig, note)
    fig.tight_layout()
    return fig


def pro_curve(masks, maps, n_thresholds: int = 200):
    """The per-region overlap curve, sampled at `n_thresholds` thresholds, for plotting.

    Returns (fpr, pro): at each threshold, the false-positive rate over all normal
    pixels and the mean overlap of all ground-truth regions (connected components,
    8-connectivity, as in :func:`ulsad.metrics.aupro`). The exact area under the
    curve is :func:`ulsad.metrics.aupro`; this sampled curve is only for drawing it.
    """
    from scipy import ndimage

    masks, maps = _as_array(masks) > 0, _as_array(maps)
    thresholds = np.quantile(maps, np.linspace(1, 0, n_thresholds))
    normal = np.sort(maps[~masks])
    fpr = 1 - np.searchsorted(normal, thresholds, "left") / normal.size
    overlaps = []
    for mask, amap in zip(masks, maps):
        labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
        for r in range(1, n + 1):
            region = np.sort(amap[labels == r])
            overlaps.append(1 - np.searchsorted(region, thresholds, "left") / region.size)
    if not overlaps:
        raise ValueError("the PRO curve needs anomalous pixels in the masks")
    return fpr, np.mean(overlaps, axis=0)


def plot_pro_curves(panels: dict, fpr_limit: float = 0.3, note: str | None = None) -> plt.Figure:
    """PRO curves up to `fpr_limit`: panel title -> {curve label -> (masks, maps)}.

    The legend gives each curve's AUPRO from :func:`ulsad.metrics.aupro` (exact);
    `note`, when given, is printed above the panels.
    """
    from .metrics import aupro

    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for label, (m, a) in curves.items():
            fpr, pro = pro_curve(m, a)
            keep = fpr <= fpr_limit
            ax.plot(fpr[keep], pro[keep], label=f"{label} ({aupro(_as_array(m), _as_array(a), fpr_limit):.2f})")
        ax.set(title=title, xlabel="false positive rate", xlim=(0, fpr_limit), ylim=(0, 1.02))
        ax.legend(loc="lower right", fontsize=8)
    axes[0][0].set_ylabel("per-region overlap")
    _note(fig, note)
    fig.tight_layout()
    return fig


# -- Chapters 1-4: the problem, the data, the features and attention -----------------------------

KIND_COLOURS = {"good": None, "structural": "tab:blue", "logical": "tab:red"}  # as in the paper's Figure 1


def _show_mask(ax, mask, colour: str | None) -> None:
    """Outline a mask on an image panel and tint its inside (nothing for an empty mask)."""
    mask = _as_array(mask) > 0.5
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
                axes[i, per * j + 1].imshow(_as_array(mask), cmap="gray", vmin=0, vmax=1)
                if i == 0:
                    axes[i, per * j + 1].set_title("its mask", fontsize=9, color="dimgray")
        if row_titles:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=10)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    _note(fig, note)
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
        g = _as_array(grad)
        g = np.log10(np.maximum(g / (g.max() or 1), 10.0 ** (-decades - 1)))
        im = ax.imshow(g, cmap="magma", vmin=-decades, vmax=0)
        if title in boxes:
            x0, y0, size = boxes[title]
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), size, size, fill=False, ec="cyan", ls="--", lw=1.2))
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="log10 |gradient| / max")
    _note(fig, note)
    return fig


def plot_channel_statistics(stats: dict, boundaries=(), note: str | None = None) -> plt.Figure:
    """Per-channel mean (line) and mean ± one standard deviation (band) of feature maps, one panel per entry.

    stats: title -> (mean, std), each of length c*; `boundaries` are channel positions
    drawn as dashed vertical lines (e.g. where one backbone layer's channels end).
    """
    fig, axes = plt.subplots(1, len(stats), figsize=(5 * len(stats), 3), squeeze=False, layout="constrained")
    for ax, (title, (mean, std)) in zip(axes[0], stats.items()):
        mean, std = _as_array(mean), _as_array(std)
        channels = np.arange(len(mean))
        ax.fill_between(channels, mean - std, mean + std, step="mid", color="tab:orange", alpha=0.4,
                        label="mean ± std")
        ax.step(channels, mean, where="mid", color="tab:blue", lw=1, label="mean")
        for b in boundaries:
            ax.axvline(b - 0.5, color="k", lw=0.8, ls="--")
        ax.axhline(0, color="gray", lw=0.6)
        ax.set(title=title, xlabel="channel", xlim=(-0.5, len(mean) - 0.5))
    axes[0][0].set_ylabel("feature value")
    axes[0][0].legend(loc="upper right", fontsize=8)
    _note(fig, note)
    return fig


def feature_pca_rgb(u: torch.Tensor, fit_on: torch.Tensor | None = None, k: int = 3):
    """Project patch features on their first `k` principal components, scaled to [0, 1] for display.

    u: N x c x h x w features to show; fit_on: the features that define the
    components and the colour scale (default: `u` itself). Returns the N x h x w x k
    projections (clipped to [0, 1]: the 1st and 99th percentiles of `fit_on` map to 0
    and 1) and the fraction of `fit_on`'s variance that each component explains.
    """
    def rows(t):
        return t.detach().float().cpu().permute(0, 2, 3, 1).reshape(-1, t.shape[1])

    fit = rows(u if fit_on is None else fit_on)
    mean = fit.mean(0)
    _, s, v = torch.linalg.svd(fit - mean, full_matrices=False)
    basis = v[:k].T
    ref = (fit - mean) @ basis
    lo, hi = torch.quantile(ref, 0.01, dim=0), torch.quantile(ref, 0.99, dim=0)
    proj = ((rows(u) - mean) @ basis - lo) / (hi - lo)
    explained = (s[:k] ** 2 / (s ** 2).sum()).numpy()
    n, _, h, w = u.shape
    return proj.clamp(0, 1).reshape(n, h, w, k).numpy(), explained


def plot_feature_pca(images, rgb, titles=None, note: str | None = None) -> plt.Figure:
    """Images (top row) above their patch features as colours (bottom row): PCs 1-3 as RGB.

    images: N x 3 x S x S in [0, 1]; rgb: N x h x w x 3 in [0, 1] (from :func:`feature_pca_rgb`),
    shown at the image size with nearest-neighbour upsampling, so that each patch stays a square.
    """
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.8), squeeze=False, layout="constrained")
    for j in range(n):
        image = to_numpy_image(images[j])
        axes[0, j].imshow(image)
        axes[1, j].imshow(_as_array(rgb[j]), extent=(0, image.shape[1], image.shape[0], 0),
                          interpolation="nearest")
        if titles:
            axes[0, j].set_title(titles[j], fontsize=9)
    axes[0, 0].set_ylabel("image", fontsize=9)
    axes[1, 0].set_ylabel("features: PC 1-3 as RGB", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    _note(fig, note)
    return fig


def plot_attention_maps(images, weights, queries, row_titles=None, log: bool = False,
                        note: str | None = None) -> plt.Figure:
    """Figure 5 of the paper: where each query patch attends (Eq. 3), one row per image.

    images: N x 3 x S x S in [0, 1]; weights: N x Q x h x w, the softmax weights of
    query q over all positions p (each map sums to 1); queries: Q (row, col) positions
    on the h x w feature grid. The first column shows the image with every query
    numbered; then one column per query: the weights over the dimmed image (their own
    colour scale, from 0 to the map's maximum) with the query marked. With `log`, the
    colours show log10 of the weights over the three decades below each map's maximum,
    so that small but non-zero weights become visible.
    """
    weights = _as_array(weights)
    n, q_count, h, w = weights.shape
    fig, axes = plt.subplots(n, q_count + 1, figsize=(2.2 * (q_count + 1), 2.3 * n + 0.3), squeeze=False,
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
            shown, top = weights[i, q], weights[i, q].max()
            low = 0.0
            if log:
                shown, top = np.log10(np.maximum(shown, 1e-30)), np.log10(top)
                low = top - 3
            ax.imshow(shown, cmap="inferno", alpha=0.85, extent=(-0.5, size - 0.5, size - 0.5, -0.5),
                      interpolation="nearest", vmin=low, vmax=top)
            mark(ax, q)
            if i == 0:
                ax.set_title(f"query {q + 1} at {tuple(int(v) for v in queries[q])}", fontsize=9)
        if row_titles:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=9)
    axes[0, 0].set_title("image and queries", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    _note(fig, note)
    return fig


# -- Chapters 9 and 13: the paper's tables, and our runs beside them -----------------------------

def _column_labels(columns) -> list[str]:
    """Column labels as text; a two-level header (Table 2: dataset, metric) on two lines."""
    return ["\n".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in columns]


def rank_table(table):
    """Each method's rank in every column of a results table (1 = best; ties share the better rank), and its mean."""
    ranks = table.rank(ascending=False, method="min")
    ranks["mean rank"] = ranks.mean(axis=1)
    return ranks


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
                linewidths=0.5, annot_kws={"fontsize": 7}, xticklabels=_column_labels(table.columns),
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(4 + 1.3 * table.shape[1], 0.45 * len(table) + 2),
                                      gridspec_kw={"width_ratios": [table.shape[1] + 1, ranks.shape[1]]})
    _gap_heatmap(left, table, highlight)
    left.set_title(title, fontsize=10)
    text = ranks.map(lambda r: "" if np.isnan(r) else f"{r:.0f}")
    text["mean rank"] = ranks["mean rank"].map(lambda r: f"{r:.1f}")
    sns.heatmap(ranks, annot=text.to_numpy(), fmt="", cmap="YlGn_r", vmin=1, vmax=len(table), cbar=False,
                linewidths=0.5, ax=right, annot_kws={"fontsize": 7}, xticklabels=_column_labels(ranks.columns),
                yticklabels=False)
    right.set(title="rank (1 = best)", xlabel="", ylabel="")
    _mark_row(right, ranks.index, highlight)
    _note(fig, note)
    fig.tight_layout()
    return fig


def plot_table_panels(panels: dict, highlight: str | None = "ULSAD", note: str | None = None) -> plt.Figure:
    """Several results tables (title -> methods x columns, percent) side by side, one heatmap each, same rows."""
    first = next(iter(panels.values()))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.5 + 0.9 * first.shape[1] * len(panels), 0.4 * len(first) + 2.2),
                             squeeze=False)
    for i, (ax, (title, table)) in enumerate(zip(axes[0], panels.items())):
        _gap_heatmap(ax, table, highlight, cbar=i == len(panels) - 1)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelrotation=45)
        if i:
            ax.set_yticklabels([])
    _note(fig, note)
    fig.tight_layout()
    return fig


def run_tables(runs):
    """Per category (mean over its seeds) and over all categories, in percent, from the rows of runs.csv.

    Returns (whole, by_type): ``whole`` has columns (metric, map) for image AUROC,
    pixel AUROC and AUPRO of the combined, local and global maps on the whole test
    set; ``by_type`` the image AUROC of each map on the logical and on the
    structural anomalies (each against the normal test images).
    """
    import pandas as pd

    from .evaluate import MAPS, TYPES, metric_key

    per_category = runs.groupby("category", sort=False).mean(numeric_only=True)
    names = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "aupro": "AUPRO"}
    whole = pd.DataFrame({(names[k], m): per_category[metric_key(k, m)] for k in names for m in MAPS})
    by_type = pd.DataFrame({(f"{t} image AUROC", m): per_category[metric_key("image_auroc", m, t)]
                            for t in TYPES for m in MAPS})
    tables = []
    for table in (whole, by_type):
        table = table.astype(float) * 100
        table.loc["mean"] = table.mean()
        tables.append(table.rename_axis("category"))
    return tuple(tables)


def plot_run_tables(whole, by_type, note: str | None = None) -> plt.Figure:
    """Our per-category metrics (run_tables) as two heatmaps; colours on the AUROC scale, 50 = chance."""
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(14, 0.5 * len(whole) + 2.2),
                             gridspec_kw={"width_ratios": [whole.shape[1], by_type.shape[1] + 1]})
    for ax, table, title, cbar in ((axes[0], whole, "whole test set", False),
                                   (axes[1], by_type, "image AUROC per kind of anomaly", True)):
        sns.heatmap(table, annot=True, fmt=".1f", cmap="RdYlGn", vmin=50, vmax=100, ax=ax, cbar=cbar,
                    linewidths=0.5, annot_kws={"fontsize": 8}, xticklabels=_column_labels(table.columns),
                    cbar_kws={"label": "percent (50 = chance for AUROC)"} if cbar else None)
        ax.set(title=title, xlabel="", ylabel="")
        ax.tick_params(axis="y", labelrotation=0)
        for x in range(3, table.shape[1], 3):  # separate the metrics (or kinds), each with its three maps
            ax.axvline(x, color="white", lw=3)
        ax.axhline(len(table) - 1, color="black", lw=1.5)  # the mean row below the categories
    _note(fig, note)
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
    _note(fig, note)
    fig.tight_layout()
    return fig


# -- Chapter 10: ablations (Table 3, Tables 21-23, Figures 7-8) ----------------------------------

def plot_metric_heatmaps(panels: dict, vmin: float = 50, vmax: float = 100, note: str | None = None) -> plt.Figure:
    """Tables of percentages (title -> rows x metrics) side by side, the values written in the cells.

    One colour scale for every panel, with 50 (chance for an AUROC) at the red end, so that a panel
    of our runs and one of the paper's read alike.
    """
    import seaborn as sns

    widths = [t.shape[1] + 1 for t in panels.values()]
    rows = max(len(t) for t in panels.values())
    fig, axes = plt.subplots(1, len(panels), figsize=(2.5 + 0.85 * sum(widths), 0.38 * rows + 2.2),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for i, (ax, (title, table)) in enumerate(zip(axes[0], panels.items())):
        last = i == len(panels) - 1
        sns.heatmap(table.astype(float), annot=True, fmt=".1f", cmap="RdYlGn", vmin=vmin, vmax=vmax, ax=ax,
                    cbar=last, linewidths=0.5, annot_kws={"fontsize": 8}, xticklabels=_column_labels(table.columns),
                    cbar_kws={"label": "percent (50 = chance for AUROC)"} if last else None)
        ax.set_title(title, fontsize=10)
        ax.set(xlabel="", ylabel="")
        ax.tick_params(axis="x", labelrotation=45)
    _note(fig, note)
    fig.tight_layout()
    return fig


def plot_claim_effects(effects, metrics, ours: str, note: str | None = None) -> plt.Figure:
    """The paper's ablation claims as paired differences: one row of panels per claim, one column per metric.

    ``effects`` has columns claim, pair (e.g. "row 4 - row 2"), metric, ours, paper (percentage points).
    A bar above 0 means the component helped in that pair of Table 3 rows. ``ours`` labels our bars
    (where they come from, e.g. "ours (synthetic, ImageNet efficientnet_lite0)").
    """
    claims = list(dict.fromkeys(effects["claim"]))
    fig, axes = plt.subplots(len(claims), len(metrics), figsize=(3.6 * len(metrics), 2.4 * len(claims)),
                             squeeze=False, sharey="row")
    for (i, claim), (j, metric) in ((c, m) for c in enumerate(claims) for m in enumerate(metrics)):
        ax = axes[i][j]
        part = effects[(effects["claim"] == claim) & (effects["metric"] == metric)]
        x = np.arange(len(part))
        ax.bar(x - 0.2, part["ours"], 0.4, label=ours, color="tab:blue")
        ax.bar(x + 0.2, part["paper"], 0.4, label="paper (MVTec LOCO, Table 3)", color="tab:gray")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, part["pair"], fontsize=7, rotation=20)
        ax.set_title(f"{claim}\n{metric}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    for row in axes:
        row[0].set_ylabel("difference (points)")
    _note(fig, note)
    fig.tight_layout()
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
                    vmax=centre + half, ax=ax, cbar=False, annot_kws={"fontsize": 8}, linewidths=0.5)
        ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, lw=2.5, ec="black"))
        spread = np.nanmax(table.to_numpy()) - np.nanmin(table.to_numpy())
        ax.set_title(f"{title}\n(spread {spread:.1f} points; framed: the paper's α, β)", fontsize=9)
        ax.set(xlabel="β", ylabel="α")
    _note(fig, note)
    fig.tight_layout()
    return fig


def plot_lambda_curves(panels: dict, note: str | None = None) -> plt.Figure:
    """Table 21: metrics against λ_l, one panel per source (title -> DataFrame indexed by λ_l, percent)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.4), squeeze=False)
    for ax, (title, table) in zip(axes[0], panels.items()):
        for column in table.columns:
            ax.plot(table.index, table[column], marker="o", label=column)
        ax.set(title=title, xlabel=r"$\lambda_l$ (weight of the direction term $l_d$)", ylabel="percent")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _note(fig, note)
    fig.tight_layout()
    return fig


def plot_grouped_bars(panels: dict, ylim=(0, 100), note: str | None = None) -> plt.Figure:
    """Fig. 8 style: one panel per source (title -> rows x metrics, percent), a group of bars per metric."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
    for ax, (title, table) in zip(axes[0], panels.items()):
        x = np.arange(table.shape[1])
        width = 0.8 / len(table)
        for k, (name, values) in enumerate(table.iterrows()):
            ax.bar(x + (k - (len(table) - 1) / 2) * width, values.astype(float), width, label=str(name))
        ax.set_xticks(x, _column_labels(table.columns))
        ax.set(title=title, ylabel="percent", ylim=ylim)
        ax.axhline(50, color="black", lw=0.8, ls=":")  # chance for an AUROC
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    _note(fig, note)
    fig.tight_layout()
    return fig


# -- Chapters 11-12: the baselines from anomalib, and what each method costs ------------------------

def plot_cost_curves(table, panels: dict, labels: dict | None = None, note: str | None = None) -> plt.Figure:
    """Measured costs against the training-set size, one line per method.

    table: one row per (method, n_train) with the columns named in panels (column -> (title, log y)).
    labels: method -> legend label.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.3), squeeze=False)
    for ax, (column, (title, log)) in zip(axes[0], panels.items()):
        for method, rows in table.sort_values("n_train").groupby("method", sort=False):
            ax.plot(rows["n_train"], rows[column], marker="o", label=(labels or {}).get(method, method))
        ax.set(title=title, xlabel="normal training images", xscale="log", yscale="log" if log else "linear")
        ax.set_xticks(sorted(table["n_train"].unique()), [str(n) for n in sorted(table["n_train"].unique())])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    _note(fig, note)
    fig.tight_layout()
    return fig
