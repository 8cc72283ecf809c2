"""What the chapters compute to show, but do not draw: feature PCA, ranks, and runs.csv as tables."""
from __future__ import annotations

import pandas as pd
import torch

from ..evaluate import MAPS, TYPES, metric_key


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


def rank_table(table):
    """Each method's rank in every column of a results table (1 = best; ties share the better rank), and its mean."""
    ranks = table.rank(ascending=False, method="min")
    ranks["mean rank"] = ranks.mean(axis=1)
    return ranks


def run_tables(runs):
    """Per category (mean over its seeds) and over all categories, in percent, from the rows of runs.csv.

    Returns (whole, by_type): ``whole`` has columns (metric, map) for image AUROC,
    pixel AUROC and AUPRO of the combined, local and global maps on the whole test
    set; ``by_type`` the image AUROC of each map on the logical and on the
    structural anomalies (each against the normal test images).
    """
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
