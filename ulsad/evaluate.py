"""Evaluation of a trained detector on a test set: the paper's metrics for each map (Sec. 4, Tables 1-2, 6-20).

    evaluate(detector, test)          metrics of the local, global and combined maps, a flat dict
    floor_and_border(detector, test)  l_v's floor and the border maxima of the raw local map (normal images)
    predict_dataset(detector, test)   the maps, image scores and ground truth behind them (numpy)
    alpha_beta_grid(detector, validation, test, alphas, betas)
                                      Fig. 7: the metrics at other quantile levels, without retraining
    results_table(result)             the dict as a table: (map, images) x metric

Resolution. Maps and masks are compared at the configuration's ``image_size``
(S x S, 256 in the paper), the resolution the detector sees; the result's
``image_size`` says which. Only sPRO is computed at the test images' own
resolution, since its saturation thresholds count full-resolution pixels.

Keys of the result (and of ``python -m ulsad evaluate --json``). A key is
``[map.][images.]metric``, where the parts in brackets are left out for the
combined map and for the whole test set:

- ``image_auroc``, ``pixel_auroc``, ``aupro``: the combined map (Eq. 10) on the
  whole test set, the numbers of Tables 1-2. ``pixel_auroc`` and ``aupro`` are
  null when the test set has no ground-truth masks (``dataset.has_masks``).
- ``spro``: MVTec LOCO's sPRO (FPR limit 0.05) of the combined map, when the
  category has a ``defects_config.json``; else null. The paper reports no sPRO.
- ``local.image_auroc``, ``local.pixel_auroc``, ``local.aupro`` and the same
  under ``global.``: each branch's own map (normalised and blurred, Sec. 3.5).
  ``global.*`` are null for a detector without a global branch (Table 3 rows 1
  and 6).
- When the test set holds both logical and structural anomalies (MVTec LOCO,
  the synthetic benchmark): ``logical.<metric>`` and ``structural.<metric>``
  for the combined map, ``local.logical.<metric>`` ... for the branches,
  each on the good images plus the anomalies of that type only.
- ``image_size`` (evaluation resolution), ``n_test``, ``n_anomalous``.

Every metric is a float in [0, 1] (the paper prints percent).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from . import maps, metrics
from .data import DataError, stack_images
from .data.images import open_image

MAPS = ("combined", "local", "global")
TYPES = ("logical", "structural")  # MVTec LOCO's two kinds of anomaly (and the synthetic benchmark's)
METRICS = ("image_auroc", "pixel_auroc", "aupro", "spro")
SPRO_FPR_LIMIT = 0.05  # MVTec LOCO's default integration limit


def metric_key(metric: str, map: str = "combined", images: str = "all") -> str:
    """The result key of ``metric`` for a map and a subset of the test images (module docstring)."""
    return ".".join([*([map] if map != "combined" else []), *([images] if images != "all" else []), metric])


@dataclass
class Predictions:
    """A test set run through a detector: ground truth, maps (N x S x S float32) and image scores."""

    labels: np.ndarray  # N, 1 = anomalous
    types: np.ndarray  # N, "good", "logical", "structural" or a defect name
    masks: np.ndarray  # N x S x S bool (all False where the dataset has no masks)
    has_masks: bool
    maps: dict  # map name -> N x S x S float32, or None (no global branch)
    scores: dict  # map name -> N float32 (max of the map, Eq. 10), or None

    @property
    def subsets(self) -> dict[str, np.ndarray | slice]:
        """The image subsets metrics are computed on: all, and per anomaly type when both types occur."""
        out = {"all": slice(None)}
        if set(TYPES) <= set(self.types):
            good = self.labels == 0
            out.update({t: good | (self.types == t) for t in TYPES})
        return out


def _run(dataset, batch_size: int, num_workers: int, maps_of) -> Predictions:
    """Ground truth of `dataset` and the maps `maps_of(images)` returns, batch by batch, as numpy."""
    labels, types, masks, out = [], [], [], {}
    for batch in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        labels.append(np.asarray(batch["label"]))
        types += batch["type"]
        masks.append(batch["mask"].numpy() > 0)
        for name, m in maps_of(batch["image"]).items():
            out.setdefault(name, []).append(None if m is None else m.float().cpu().numpy())
    # A map is None throughout or nowhere: it depends on the detector, not on the batch.
    stacked = {k: None if v[0] is None else np.concatenate(v) for k, v in out.items()}
    return Predictions(np.concatenate(labels), np.asarray(types), np.concatenate(masks),
                       dataset.has_masks, stacked, {})


def with_scores(pred: Predictions) -> Predictions:
    """Image scores as Eq. (10) takes them, the max of each map."""
    scores = {k: None if m is None else maps.image_score(torch.from_numpy(m)).numpy()
              for k, m in pred.maps.items()}
    return replace(pred, scores=scores)


def predict_dataset(detector, dataset, batch_size: int | None = None) -> Predictions:
    """Every test image through ``detector.predict``: the normalised, blurred local, global and combined
    maps (Sec. 3.5), their image scores, and the labels, types and masks of the images."""
    cfg = detector.config

    def predicted(images):
        out = detector.predict(images)
        return {k: out[k] for k in MAPS}

    return with_scores(_run(dataset, batch_size or cfg.batch_size, cfg.num_workers, predicted))


def compute_metrics(pred: Predictions, which=MAPS, defects: list | None = None) -> dict:
    """The metrics of ``pred`` under the keys of the module docstring, for the maps named in ``which``.

    defects: per test image, the ``(mask, saturation)`` pairs of ``metrics.spro`` at full resolution
    (see :func:`load_defects`); sPRO is computed for the combined map when given.
    """
    result = {"image_size": int(pred.masks.shape[-1]), "n_test": len(pred.labels),
              "n_anomalous": int(pred.labels.sum())}
    for name, (subset, idx) in itertools.product(which, pred.subsets.items()):
        amap, score = pred.maps[name], pred.scores[name]
        key = lambda metric: metric_key(metric, name, subset)  # noqa: E731
        pixels = amap is not None and pred.has_masks
        result[key("image_auroc")] = None if amap is None else metrics.image_auroc(pred.labels[idx], score[idx])
        result[key("pixel_auroc")] = metrics.pixel_auroc(pred.masks[idx], amap[idx]) if pixels else None
        result[key("aupro")] = metrics.aupro(pred.masks[idx], amap[idx]) if pixels else None
        if name == "combined":
            result[key("spro")] = None if defects is None else _spro(defects, amap, idx)
    return result


def evaluate(detector, dataset, batch_size: int | None = None, defects_config=None) -> dict:
    """Image AUROC, pixel AUROC and AUPRO of the local, global and combined maps, on the whole test set
    and per anomaly type (keys: module docstring).

    defects_config: the category's ``defects_config.json`` (MVTec LOCO); adds sPRO. See
    :func:`find_defects_config`.
    """
    pred = predict_dataset(detector, dataset, batch_size)
    defects = None if defects_config is None else load_defects(dataset, defects_config)
    return compute_metrics(pred, defects=defects)


def floor_and_border(detector, dataset, batch_size: int | None = None) -> dict:
    """What the raw local map M^l (Eq. 7, at h* x w*) does on the normal images of ``dataset``.

    - ``local.floor_share``: the mean of l_v's floor (:func:`ulsad.losses.l_v_floor`) over the
      mean of M^l, the share of the map no training can remove; null when ψ has no final ReLU,
      whose output can then reach U and the floor does not bind.
    - ``local.border_share``: the fraction of normal images whose M^l peaks on the outer ring of
      feature cells (chance: the ring's share of the grid, 60 of 256 cells at h* = 16).
    """
    from .losses import l_v_floor

    cfg = detector.config
    detector.eval()
    floor, m_sum, on_ring, n = 0.0, 0.0, 0, 0
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size or cfg.batch_size, num_workers=cfg.num_workers):
            x = batch["image"][np.asarray(batch["label"]) == 0]
            if len(x) == 0:
                continue
            out = detector(x.to(detector.device))
            m_l, _ = maps.raw_maps(out, cfg)
            floor += float(l_v_floor(out.u).sum())
            m_sum += float(m_l.sum())
            h, w = m_l.shape[-2:]
            row, col = np.unravel_index(m_l.flatten(1).argmax(1).cpu().numpy(), (h, w))
            on_ring += int(((row == 0) | (row == h - 1) | (col == 0) | (col == w - 1)).sum())
            n += len(x)
    if n == 0:
        raise DataError("floor_and_border needs normal images in the test set; it holds none")
    return {"local.floor_share": floor / m_sum if cfg.frn_final_relu else None,
            "local.border_share": on_ring / n}


def alpha_beta_grid(detector, validation, test, alphas, betas, batch_size: int | None = None) -> pd.DataFrame:
    """Fig. 7: the combined map's metrics for every α < β, from one trained detector, without retraining.

    The raw maps M^l and M^g (Eq. 7-8) of the validation and test images are
    computed once; each grid point only takes new quantiles of the validation
    maps and re-normalises (Eq. 9), blurs and combines the test maps, as
    ``detector.predict`` does with its own q_α, q_β. Only the combined map can
    change: each branch's map goes through an increasing affine transform and a
    blur that commutes with it, so the branch metrics are those of
    :func:`evaluate` at every point.

    Returns one row per (α, β) with the combined-map keys of :func:`evaluate`.
    """
    cfg = detector.config
    batch_size = batch_size or cfg.batch_size
    val_l, val_g = detector.raw_maps_of(stack_images(validation), batch_size)

    def raw(images):
        m_l, m_g = detector.raw_maps(images)
        return {"local": m_l, "global": m_g}

    test_raw = _run(test, batch_size, cfg.num_workers, raw)
    # The blur of every grid point is the costly part: do it where the detector runs.
    on_device = lambda m: None if m is None else torch.as_tensor(m).to(detector.device)  # noqa: E731
    raw_l, raw_g = on_device(test_raw.maps["local"]), on_device(test_raw.maps["global"])
    val_l, val_g = on_device(val_l), on_device(val_g)

    rows = []
    for alpha, beta in itertools.product(alphas, betas):
        if not alpha < beta:
            continue  # Eq. (9) needs q_α < q_β
        q = [q for val in (val_l, val_g) if val is not None
             for q in maps.quantiles(val, alpha, beta, cfg.quantile_samples, cfg.seed)]
        combined = maps.final_maps(raw_l, raw_g, q, cfg.blur_sigma, cfg.blur_kernel)[2].cpu().numpy()
        pred = with_scores(replace(test_raw, maps={"combined": combined}))
        rows.append({"alpha": alpha, "beta": beta, **compute_metrics(pred, which=("combined",))})
    return pd.DataFrame(rows)


def find_defects_config(root, category: str):
    """``root/category/defects_config.json`` if it exists (MVTec LOCO ships one per category), else None."""
    path = Path(root) / category / "defects_config.json"
    return path if path.is_file() else None


def load_defects(dataset, defects_config) -> list[list[tuple[np.ndarray, int]]]:
    """Per test image, its defects as ``(mask, saturation)`` at full resolution (``metrics.spro_regions``).

    The defect ids are read as they are (not binarised, unlike training masks); a mask whose
    size differs from its image's is an error naming both, never stretched.
    """
    config = metrics.load_defects_config(defects_config)
    defects = []
    for sample in dataset.samples:
        masks = []
        expected = open_image(sample.path).size[::-1] if sample.masks else None  # (H, W), once per image
        for path in sample.masks:
            mask = np.asarray(open_image(path))
            if mask.shape[:2] != expected:
                raise DataError(f"{path}: mask of {mask.shape[1]} x {mask.shape[0]} px for the image {sample.path} "
                                f"of {expected[1]} x {expected[0]} px; expected the image's size")
            masks.append(mask)
        defects.append(metrics.spro_regions(masks, config))
    return defects


def _spro(defects: list, amap: np.ndarray, idx) -> float:
    """sPRO of S x S maps brought to the ground truth's full resolution (bilinear, as LOCO resizes maps)."""
    chosen = [defects[i] for i in np.arange(len(amap))[idx]]
    sizes = {mask.shape for regions in chosen for mask, _ in regions}
    if len(sizes) > 1:
        raise ValueError(f"sPRO needs test images of one size; their ground truth has sizes {sorted(sizes)}")
    height, width = sizes.pop() if sizes else amap.shape[1:]
    small = amap[idx]
    full = np.empty((len(small), height, width), dtype=np.float32)
    for start in range(0, len(full), 16):  # a few images at a time: full-resolution maps are large
        batch = torch.from_numpy(small[start:start + 16]).unsqueeze(1)
        full[start:start + 16] = F.interpolate(batch, size=(height, width), mode="bilinear",
                                               align_corners=False).squeeze(1).numpy()
    return metrics.spro(chosen, full, SPRO_FPR_LIMIT)


def results_table(result: dict) -> pd.DataFrame:
    """A result of :func:`evaluate` as rows (map, images) and one column per metric (NaN where undefined)."""
    rows = {}
    for name, subset in itertools.product(MAPS, ("all", *TYPES)):
        values = {m: result.get(metric_key(m, name, subset), np.nan) for m in METRICS}
        if metric_key("image_auroc", name, subset) in result:
            rows[(name, subset)] = {m: np.nan if v is None else v for m, v in values.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.names = ["map", "images"]
    return table
