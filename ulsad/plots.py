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
