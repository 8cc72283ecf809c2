"""What the chapters compute to show, but do not draw: feature PCA, ranks, runs.csv as tables, and the
provenance line of a figure drawn from many runs."""
from __future__ import annotations

import pandas as pd
import torch

from ..backbone import describe_weights
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


def runs_note(rows, who: str = "ours") -> str:
    """The provenance line of a figure drawn from several runs (rows of runs.csv or baselines.csv): a field
    the rows share once, and every value of a field they do not, so that the banner of a figure over five
    categories or three backbones names them all, never only the first row's.

    e.g. "ours: SYNTHETIC data, backbones efficientnet_lite0, efficientnet_lite1 with ImageNet (...) weights,
    profile demo, image size 128, epochs 30; category lunch_box, seed 0". Fields the rows lack are left out.
    """
    def listed(column, show=str) -> list[str]:
        """The column's distinct values in order of first appearance, as text ("128", not "128.0")."""
        if column not in rows:
            return []
        return [show(f"{v:g}" if isinstance(v, float) else str(v)) for v in dict.fromkeys(rows[column])
                if not pd.isna(v)]

    def named(column, one, many) -> str | None:
        found = listed(column)
        return f"{one if len(found) == 1 else many} {', '.join(found)}" if found else None

    data, weights = listed("data"), listed("weights", describe_weights)
    backbone = named("backbone", "backbone", "backbones")
    if weights:
        backbone = f"{backbone or 'backbone'} with {', '.join(weights)} weights"
    setting = [f"{', '.join(data)} data" if data else None, backbone, named("profile", "profile", "profiles"),
               named("image_size", "image size", "image sizes"), named("epochs", "epochs", "epochs")]
    scope = [named("category", "category", "categories"), named("seed", "seed", "seeds")]
    line = f"{who}: " + ", ".join(part for part in setting if part)
    scope_text = ", ".join(part for part in scope if part)
    return line + (f"; {scope_text}" if scope_text else "")
