"""Learning curves: one fit evaluated every few epochs (chapter 7 and benchmarks/training_budget.py)."""
from __future__ import annotations

import time

from .. import data, fit
from ..evaluate import evaluate

# What each evaluation records besides the epoch's loss terms
METRICS = ("image_auroc", "pixel_auroc", "aupro", "logical.image_auroc", "structural.image_auroc",
           "local.image_auroc", "global.image_auroc", "local.pixel_auroc", "global.pixel_auroc",
           "local.structural.image_auroc", "global.logical.image_auroc")


def learning_curve(config, train, validation, test, every: int, label: dict | None = None) -> list[dict]:
    """Train with ``config`` and, every ``every`` epochs and at the last, calibrate on the validation
    images and evaluate on the test split: one row per evaluation (metrics, losses, wall time)."""
    start, rows = time.perf_counter(), []
    validation_images = data.stack_images(validation)

    def look(epoch, detector):
        if epoch % every and epoch != config.epochs:
            return None
        detector.calibrate(validation_images)
        result = evaluate(detector, test)
        rows.append({**(label or {}), "epoch": epoch, "wall_s": time.perf_counter() - start,
                     "weights": detector.weights_source, **{k: result[k] for k in METRICS}})
        return None

    _, history = fit(train, validation, config, progress=False, on_epoch=look)
    losses = {h["epoch"]: h for h in history}
    for row in rows:
        row.update({k: losses[row["epoch"]][k] for k in ("L_pl", "L_pg", "L_lg", "total")})
    return rows
