"""Learning curves: one fit evaluated every few epochs (chapter 7 and benchmarks/training_budget.py)."""
from __future__ import annotations

import time

import numpy as np
import torch

from .. import data, fit
from ..evaluate import evaluate

# What each evaluation records besides the epoch's loss terms
METRICS = ("image_auroc", "pixel_auroc", "aupro", "logical.image_auroc", "structural.image_auroc",
           "local.image_auroc", "global.image_auroc", "local.pixel_auroc", "global.pixel_auroc",
           "local.structural.image_auroc", "global.logical.image_auroc")


def global_map_levels(detector, train_images, test) -> dict:
    """Where the raw global map M^g (Eq. 8) stands: its mean over the training images, over the
    normal test images, and over the logical anomalies, inside and outside their masks.

    The test images are as new to φ as the anomalies are; when M^g is much lower on the images
    it was trained on than on unseen normal ones, the global pair has learnt those images rather
    than what they share, and an anomaly's excess inside its mask has to beat the spread of M^g
    between normal images to rank above them.
    """
    m_train = detector.raw_maps_of(train_images)[1]
    x = data.stack_images(test)
    types = np.asarray(test.types)
    logical = types == "logical"
    masks = torch.stack([test[i]["mask"] for i in np.flatnonzero(logical)]) > 0.5
    m_test = detector.raw_maps_of(x)[1]
    m_logical = m_test[torch.from_numpy(logical)]
    return {"global.train_mean": float(m_train.mean()),
            "global.normal_mean": float(m_test[torch.from_numpy(types == "good")].mean()),
            "global.logical_in_mask": float(m_logical[masks].mean()),
            "global.logical_out_mask": float(m_logical[~masks].mean())}


def learning_curve(config, train, validation, test, every: int, label: dict | None = None,
                   levels: bool = False) -> list[dict]:
    """Train with ``config`` and, every ``every`` epochs and at the last, calibrate on the validation
    images and evaluate on the test split: one row per evaluation (metrics, losses, wall time, and with
    ``levels`` the global map's :func:`global_map_levels`)."""
    start, rows = time.perf_counter(), []
    validation_images = data.stack_images(validation)
    train_images = data.stack_images(train) if levels else None

    def look(epoch, detector):
        if epoch % every and epoch != config.epochs:
            return None
        detector.calibrate(validation_images)
        result = evaluate(detector, test)
        rows.append({**(label or {}), "epoch": epoch, "wall_s": time.perf_counter() - start,
                     "weights": detector.weights_source, **{k: result[k] for k in METRICS},
                     **(global_map_levels(detector, train_images, test) if levels else {})})
        return None

    _, history = fit(train, validation, config, progress=False, on_epoch=look)
    losses = {h["epoch"]: h for h in history}
    for row in rows:
        row.update({k: losses[row["epoch"]][k] for k in ("L_pl", "L_pg", "L_lg", "total")})
    return rows
