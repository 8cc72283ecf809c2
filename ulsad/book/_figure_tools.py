"""Small helpers every figure of the book uses: tensors as arrays, the provenance line on top, bare image axes."""
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


def as_array(x) -> np.ndarray:
    """A tensor or array-like as a float NumPy array on the CPU."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def add_note(fig: plt.Figure, note: str | None) -> None:
    """Write a provenance line (where the data and weights come from) at the top of the figure."""
    if note:
        fig.suptitle(note, fontsize=8, color="firebrick")


def column_labels(columns) -> list[str]:
    """Column labels as text; a two-level header (Table 2: dataset, metric) on two lines."""
    return ["\n".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in columns]


def no_ticks(axes) -> None:
    """Take the ticks off one axes or an array of them: images need no pixel coordinates."""
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
