"""Small helpers every figure of the book uses: tensors as arrays, the provenance line on top, bare image axes,
one colour per method, one colour scale per metric, legends that cover no data."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import to_hex, to_rgb

from ..config import TABLE3, VARIANTS


def to_numpy_image(image) -> np.ndarray:
    """3 x H x W tensor in [0, 1] (or H x W x 3 array) -> H x W x 3 array for imshow."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = image.permute(1, 2, 0).numpy() if image.ndim == 3 and image.shape[0] == 3 else image.numpy()
    return np.clip(image, 0, 1)


def as_array(x) -> np.ndarray:
    """A tensor or array-like as a float NumPy array on the CPU."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


NOTE_FONTSIZE = 8
NOTE_CHARS_PER_INCH = 15  # at 8 points, about the widest text that stays inside the figure


def add_note(fig: plt.Figure, note: str | None) -> None:
    """Write a provenance line (where the data and weights come from) at the top of the figure, wrapped to
    its width: a line wider than the figure would widen the saved image, and the page would shrink it all."""
    if note:
        width = max(30, int(fig.get_figwidth() * NOTE_CHARS_PER_INCH))
        lines = [textwrap.fill(line, width) for line in note.splitlines()]
        fig.suptitle("\n".join(lines), fontsize=NOTE_FONTSIZE, color="firebrick")


PAGE_WIDTH_IN = 10  # about the width a page shows a figure at full size; a wider one is shrunk, its numbers with it
INCH_PER_COLUMN = 0.75  # a heatmap column wide enough for "98.75" at 7-8 points


def panels_across_or_down(widths, height: float, margin: float = 2.5) -> tuple[plt.Figure, list, bool]:
    """A figure of tables drawn as heatmaps (``widths``: each panel's width in columns): side by side when
    they fit ``PAGE_WIDTH_IN`` at ``INCH_PER_COLUMN``, else one under the other, each ``height`` tall.
    Returns the figure, its axes in the panels' order, and whether they stand side by side."""
    across = margin + INCH_PER_COLUMN * sum(widths) <= PAGE_WIDTH_IN
    if across:
        fig, axes = plt.subplots(1, len(widths), figsize=(margin + INCH_PER_COLUMN * sum(widths), height),
                                 gridspec_kw={"width_ratios": widths}, squeeze=False)
    else:
        fig, axes = plt.subplots(len(widths), 1, figsize=(margin + INCH_PER_COLUMN * max(widths), height * len(widths)),
                                 squeeze=False)
    return fig, list(axes.flat), across


def column_labels(columns) -> list[str]:
    """Column labels as text; a two-level header (Table 2: dataset, metric) on two lines."""
    return ["\n".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in columns]


def no_ticks(axes) -> None:
    """Take the ticks off one axes or an array of them: images need no pixel coordinates."""
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


# -- one colour per method, variant and backbone, in every figure ------------------------------------------

def _key(name: str) -> str:
    """Names compared without case, spaces, hyphens and underscores: "Wide-ResNet50-2" is wide_resnet50_2."""
    return "".join(ch for ch in str(name).lower() if ch not in " -_")


def _palette() -> dict[str, str]:
    """Every name a figure colours by, with its colour. A reader who has found ULSAD in red finds it in red in
    every panel of every chapter, and PatchCore in blue beside it."""
    ulsad, authors = "#d62728", "#ff7f0e"
    colours = {"ULSAD": ulsad, "full": ulsad, "no final ReLU": ulsad,
               "ULSAD, authors' ReLU": authors, "authors_relu": authors, "authors' final ReLU": authors,
               "PatchCore": "#1f77b4", "PaDiM": "#2ca02c", "STFPM": "#9467bd", "Reverse Distillation": "#8c564b",
               "FastFlow": "#e377c2", "CFLOW": "#7f7f7f", "DRAEM": "#bcbd22"}
    # Table 3: rows 1-5 (λ_l = 0) light, rows 6-10 (the same losses with the direction term) dark of the same
    # hue; row 10 is ULSAD itself and keeps ULSAD's red.
    pairs = plt.get_cmap("tab20").colors
    hues = (14, 16, 18, 8, 6)  # tab20's dark shades: grey, olive, cyan, purple, red
    for variant in TABLE3:
        hue = hues[(variant.table3_row - 1) % 5]
        colours[variant.name] = to_hex(pairs[hue + (variant.table3_row <= 5)])
    # λ_l is ordered: a sequential scale from 0 to 1
    for name in VARIANTS:
        if name.startswith("lambda_l-"):
            colours[name] = to_hex(plt.get_cmap("viridis")(float(name.split("-", 1)[1])))
    # backbones, light to dark within a family as they grow
    families = {("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"): ("#9e9ac8", "#6a51a3", "#3f007d"),
                ("resnet18", "resnet50", "resnet152"): ("#fdae6b", "#f16913", "#a63603"),
                ("wide_resnet50_2", "wide_resnet101_2"): ("#41b6c4", "#225ea8")}
    for backbones, shades in families.items():
        for backbone, shade in zip(backbones, shades):
            colours[backbone] = colours[f"backbone-{backbone}"] = shade
    colours["Wide-ResNet100-2"] = colours["wide_resnet101_2"]  # the paper's Table 23 misnames Wide-ResNet101-2
    # a variant as the reproduction chapters label ULSAD's runs: "ULSAD (authors_relu)"
    colours.update({f"ULSAD ({name})": colours[name] for name in VARIANTS})
    return {_key(name): colour for name, colour in colours.items()}


_COLOURS = _palette()


def method_colour(name) -> str | None:
    """The book's colour of a method, variant or backbone, found by its name or by the longest known name it
    starts with ("PatchCore-10%" is PatchCore's, "efficientnet_lite0 (ImageNet)" Lite0's); None for others."""
    text = str(name)
    for end in range(len(text), 0, -1):
        if (end == len(text) or not text[end].isalnum()) and _key(text[:end]) in _COLOURS:
            return _COLOURS[_key(text[:end])]
    return None


def colours_for(names) -> dict:
    """A colour for each name of one figure: the book's own where it has one, never the same twice within the
    figure: a second name of one method ("ULSAD, c* = 152" after "ULSAD, c* = 96") takes a darker shade of
    it, and names the book does not colour take the colours of matplotlib's cycle that the figure leaves free."""
    names = list(dict.fromkeys(names))
    chosen = {}
    for name in names:
        colour = method_colour(name)
        if colour is not None:
            taken = sum(method_colour(other) == colour for other in chosen)
            chosen[name] = to_hex(np.array(to_rgb(colour)) * 0.6 ** taken)
    spare = (to_hex(c) for c in (*plt.get_cmap("tab10").colors, *plt.get_cmap("tab20").colors))
    for name in names:
        if name not in chosen:
            chosen[name] = next(c for c in spare if c not in chosen.values())
    return {name: chosen[name] for name in names}


# -- one colour scale per metric ------------------------------------------------------------------------------

def metric_of(*texts) -> str | None:
    """Which metric a column or panel shows, read from its labels: "AUPRO", "AUROC" or None."""
    text = " ".join(map(str, texts)).lower()
    return "AUPRO" if "aupro" in text else "AUROC" if "auroc" in text else None


def metric_scale(metric: str | None, vmin: float = 0.0, vmax: float = 100.0) -> dict:
    """A heatmap's colours for a metric in percent: cmap, vmin, vmax and the colour bar's label.

    AUROC diverges from 50, chance, in white: blue above, red below, as far each way (at least ``vmin`` to
    ``vmax``). AUPRO has no chance level at 50 (a random map scores about 15 % at FPR ≤ 0.3): a sequential
    scale from 0 to 100. Anything else in percent: the same sequential scale from ``vmin`` to ``vmax``.
    """
    if metric == "AUROC":
        half = max(50 - vmin, vmax - 50)
        return {"cmap": "RdBu", "vmin": 50 - half, "vmax": 50 + half, "label": "AUROC (%): white = 50 = chance"}
    if metric == "AUPRO":
        return {"cmap": "YlGn", "vmin": min(vmin, 0), "vmax": max(vmax, 100), "label": "AUPRO (%)"}
    return {"cmap": "YlGn", "vmin": vmin, "vmax": vmax, "label": "percent"}


# -- legends outside the data ---------------------------------------------------------------------------------

def legend_below(fig: plt.Figure, axes, ncols: int = 4, **kwargs) -> None:
    """One legend for every panel, under them, where it covers no data; each label once, in the order first
    drawn. The figure must use ``layout="constrained"``, which makes room for it."""
    entries = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), loc="outside lower center", ncols=min(ncols, len(entries)),
               fontsize=8, frameon=False, **kwargs)
