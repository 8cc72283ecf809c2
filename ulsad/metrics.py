"""Anomaly detection metrics: image AUROC, pixel AUROC, AUPRO and sPRO.

- ``image_auroc(labels, scores)``: one score per image, one label per image.
- ``pixel_auroc(masks, maps)``: every pixel of the test set is a sample.
- ``aupro(masks, maps, fpr_limit=0.3)``: MVTec AD's area under the per-region
  overlap curve. Regions are the connected components of each ground-truth mask
  (8-connectivity). At a threshold t, a region's overlap is the share of its
  pixels scored >= t, the curve's y is the mean overlap over all regions of all
  images and its x the false-positive rate over all normal pixels. The curve is
  integrated over FPR in [0, fpr_limit] (the point at exactly fpr_limit is
  interpolated) and divided by fpr_limit. ``pro_curve(masks, maps, fpr_limit)``
  returns that curve itself, for drawing it.
- ``spro(defects, maps, fpr_limit=0.05)``: MVTec LOCO AD's saturated
  per-region overlap. Each annotated defect is a region (one ground-truth PNG,
  not a connected component) whose overlap saturates: it counts as full once
  ``saturation`` of its pixels are above the threshold, so a logical anomaly
  such as a missing object need not be covered entirely. ``load_defects_config``
  and ``spro_regions`` build the regions from LOCO's files.

All four are exact: every distinct score is a threshold, and equal scores cross
a threshold together (one step of the curve; in AUROC a tie between a normal and
an anomalous sample counts half). None builds a pixels x thresholds matrix: each
sorts the scores once, O(P log P) time and O(P) memory for P pixels, so a whole
test set at full resolution fits (see ``benchmarks/bench_metrics.py``). Scores
keep their dtype: pass float32 maps to halve time and memory; we never cast
down ourselves, since rounding can merge distinct scores into ties.

Masks and labels: non-zero (or True) is anomalous. Errors are ValueErrors that
say what is wrong: shapes that differ, NaN scores, or a test set without
anomalous (or without normal) samples, on which these metrics are undefined.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Positives per binary-search batch in AUROC: bounds the index arrays to 32 MiB.
_CHUNK = 1 << 22


def image_auroc(labels, scores) -> float:
    """Area under the ROC curve of image scores; labels are 1 (or True) for anomalous images."""
    labels = np.asarray(labels).astype(bool, copy=False)
    scores = _checked_scores(scores, "scores")
    _check_same_shape(labels, scores, "labels", "scores")
    return _auroc(scores[~labels], scores[labels], "images")


def pixel_auroc(masks, maps) -> float:
    """Area under the ROC curve of all pixels: masks (N x H x W, non-zero = anomalous) and maps of the same shape."""
    masks, maps = _checked_pixels(masks, maps)
    return _auroc(maps[~masks], maps[masks], "pixels")


def aupro(masks, maps, fpr_limit: float = 0.3) -> float:
    """Normalised area under the per-region overlap curve up to ``fpr_limit`` (MVTec AD's AUPRO).

    masks: N x H x W ground truth, non-zero = anomalous; maps: N x H x W anomaly maps.
    """
    return _normalised_area(*pro_curve(masks, maps, fpr_limit), fpr_limit)


def pro_curve(masks, maps, fpr_limit: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The per-region overlap curve that :func:`aupro` integrates, as (fpr, pro) arrays up to ``fpr_limit``.

    Exact, as aupro: the curve steps at every distinct region score and ends at
    fpr_limit with an interpolated point. For drawing; its area / fpr_limit is aupro.
    """
    masks, maps = _checked_pixels(masks, maps, images=True)
    _check_fpr_limit(fpr_limit)
    # 8-connectivity, as the 3 x 3 structure of MVTec AD's evaluation code: diagonal neighbours join one region.
    structure = np.ones((3, 3), dtype=bool)
    scores, weights, n_regions = [], [], 0
    for mask, amap in zip(masks, maps):
        labels, n = ndimage.label(mask, structure=structure)
        region = labels[mask]  # region id of each anomalous pixel, in the order of amap[mask]
        scores.append(amap[mask])
        # Each region weighs the same in the mean overlap, whatever its size: a pixel adds 1 / area.
        weights.append(1.0 / np.bincount(region)[region])
        n_regions += n
    if n_regions == 0:
        raise ValueError("AUPRO is undefined without anomalies: the masks have no anomalous pixel")
    # Arrays, not lists of them, from here on: the per-image pieces are freed before the big copy below.
    scores, weights = np.concatenate(scores), np.concatenate(weights)
    weights /= n_regions
    return _overlap_curve(maps[~masks], scores, weights, fpr_limit)


def spro(defects, maps, fpr_limit: float = 0.05) -> float:
    """Normalised area under the saturated per-region overlap curve up to ``fpr_limit`` (MVTec LOCO AD's sPRO).

    defects: one sequence per image of ``(mask, saturation)`` pairs, one pair per
        annotated defect (empty for a good image). ``mask`` is H x W, non-zero
        inside the defect; ``saturation`` is how many of its pixels must be above
        the threshold for its overlap to be full, 1 <= saturation <= area.
        ``spro_regions`` builds these pairs from LOCO's ground-truth PNGs.
    maps: N x H x W anomaly maps, in the order of ``defects``.

    The FPR counts every pixel outside all defects, of good and anomalous images
    alike, as LOCO's evaluation does. With saturation = area and the connected
    components as regions, sPRO is AUPRO.
    """
    maps = _checked_scores(maps, "maps")
    if maps.ndim != 3:
        raise ValueError(f"maps must be N x H x W, got shape {maps.shape}")
    if len(defects) != len(maps):
        raise ValueError(f"defects has {len(defects)} entries but maps has {len(maps)} images")
    _check_fpr_limit(fpr_limit)
    anomalous = np.zeros(maps.shape, dtype=bool)
    scores, weights = [], []
    for i, (regions, amap) in enumerate(zip(defects, maps)):
        for mask, saturation in regions:
            mask = np.asarray(mask).astype(bool, copy=False)
            _check_same_shape(mask, amap, f"a defect mask of image {i}", "its anomaly map")
            area = int(np.count_nonzero(mask))
            if saturation != int(saturation) or not 1 <= saturation <= area:
                raise ValueError(
                    f"a defect of image {i} has saturation {saturation}; it must be a whole number"
                    f" of pixels between 1 and the defect's area {area}")
            saturation = int(saturation)
            anomalous[i] |= mask
            # Only the defect's `saturation` highest-scored pixels move its overlap: the rest arrive after it is full.
            scores.append(np.sort(amap[mask])[area - saturation:])
            weights.append(np.full(saturation, 1.0 / saturation))
    if not scores:
        raise ValueError("sPRO is undefined without anomalies: no image has a defect")
    n_regions = len(scores)
    scores, weights = np.concatenate(scores), np.concatenate(weights)
    weights /= n_regions
    return _normalised_area(*_overlap_curve(maps[~anomalous], scores, weights, fpr_limit), fpr_limit)


@dataclass(frozen=True)
class DefectConfig:
    """One entry of MVTec LOCO AD's defects_config.json: a defect type and its sPRO saturation threshold."""

    defect_name: str
    pixel_value: int  # the value this defect type is drawn with in the ground-truth PNGs
    saturation_threshold: float  # pixels, or a fraction of the defect's area when relative_saturation
    relative_saturation: bool

    def saturation_pixels(self, area: int) -> int:
        """How many pixels of a defect of ``area`` pixels saturate its overlap (LOCO's rule)."""
        if self.relative_saturation:
            # LOCO's evaluation truncates to whole pixels; at least one keeps a tiny defect defined.
            return max(1, int(self.saturation_threshold * area))
        return min(int(self.saturation_threshold), area)


def load_defects_config(path) -> dict[int, DefectConfig]:
    """Read a category's defects_config.json; the result maps pixel value -> DefectConfig."""
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    return {
        int(e["pixel_value"]): DefectConfig(
            defect_name=e["defect_name"],
            pixel_value=int(e["pixel_value"]),
            saturation_threshold=e["saturation_threshold"],
            relative_saturation=bool(e["relative_saturation"]),
        )
        for e in entries
    }


def spro_regions(channels, config: dict[int, DefectConfig]) -> list[tuple[np.ndarray, int]]:
    """The ``(mask, saturation)`` pairs of one LOCO test image, for ``spro``.

    channels: the image's ground-truth PNGs (``ground_truth/<type>/<NNN>/000.png``,
        ``001.png``, ...) as integer arrays; each holds one defect, drawn in its
        defect type's pixel value.
    config: from ``load_defects_config``.
    """
    regions = []
    for channel in channels:
        channel = np.asarray(channel)
        values = np.unique(channel[channel != 0])
        if values.size != 1:
            raise ValueError(f"a ground-truth channel must hold exactly one defect value, found {values.tolist()}")
        if int(values[0]) not in config:
            raise ValueError(f"pixel value {int(values[0])} is not in the defects config ({sorted(config)})")
        mask = channel != 0
        regions.append((mask, config[int(values[0])].saturation_pixels(int(np.count_nonzero(mask)))))
    return regions


def _auroc(negatives: np.ndarray, positives: np.ndarray, what: str) -> float:
    """AUROC as the Mann-Whitney statistic, P(positive > negative) + P(tie) / 2; sorts its fresh arguments in place."""
    if negatives.size == 0 or positives.size == 0:
        raise ValueError(
            f"AUROC needs both normal and anomalous {what}; got {negatives.size} normal"
            f" and {positives.size} anomalous")
    negatives.sort()
    positives.sort()  # sorted queries keep the binary searches below cache-friendly
    # Twice U: a positive scores 2 for each negative below it and 1 for each negative tied with it.
    twice_u = 0
    for start in range(0, positives.size, _CHUNK):
        chunk = positives[start:start + _CHUNK]
        twice_u += int(np.searchsorted(negatives, chunk, "left").sum())
        twice_u += int(np.searchsorted(negatives, chunk, "right").sum())
    return twice_u / (2 * positives.size * negatives.size)


def _overlap_curve(negatives: np.ndarray, scores: np.ndarray, weights: np.ndarray,
                   fpr_limit: float) -> tuple[np.ndarray, np.ndarray]:
    """The overlap curve (FPR, mean overlap) from FPR 0 to fpr_limit, as a polyline.

    negatives: scores of the normal pixels (sorted here, in place).
    scores, weights: the region pixels that move the curve: when the threshold
        falls to a pixel's score, the mean overlap grows by its weight (all
        weights sum to 1).
    At threshold t the curve is at (share of negatives >= t, sum of weights of pixels >= t).
    """
    n = negatives.size
    if n == 0:
        raise ValueError("the overlap curve needs normal pixels for its false-positive rate; every pixel is anomalous")
    negatives.sort()
    # Pixels scored below the threshold where the FPR first exceeds the limit only shape the curve beyond it.
    beyond = int(fpr_limit * n)
    if beyond < n:
        keep = scores >= negatives[n - 1 - beyond]
        scores, weights = scores[keep], weights[keep]
    order = np.argsort(scores)[::-1]
    scores, overlap = scores[order], np.cumsum(weights[order])
    # Equal scores cross a threshold together: keep the overlap after the last of each run of equal scores
    # (the appended flag marks the final pixel, if there is one).
    last = np.flatnonzero(np.append(scores[1:] != scores[:-1], scores.size > 0))
    scores, cumulative = scores[last], np.concatenate(([0.0], overlap[last]))
    # Between two region scores only negatives cross, so the curve runs flat there. Two points per distinct
    # region score s span the rest: just above s (negatives > s, overlap before s) and at s (negatives >= s,
    # overlap with s); they differ in x only when negatives tie with s, which makes the step a slope.
    fpr_above = (n - np.searchsorted(negatives, scores, "right")) / n
    fpr_at = (n - np.searchsorted(negatives, scores, "left")) / n
    x = np.concatenate(([0.0], np.column_stack((fpr_above, fpr_at)).ravel(), [1.0]))
    y = np.concatenate(([0.0], np.column_stack((cumulative[:-1], cumulative[1:])).ravel(), [cumulative[-1]]))
    return _cut(x, y, fpr_limit)


def _cut(x: np.ndarray, y: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """The polyline (x, y), x non-decreasing from 0, over [0, limit]: its last point interpolated at the limit."""
    end = int(np.searchsorted(x, limit, "right"))  # the points with x <= limit
    xs, ys = x[:end], y[:end]
    if end < x.size and xs[-1] < limit:
        # The curve crosses x = limit between two points: add the point at the limit on the line between them.
        t = (limit - x[end - 1]) / (x[end] - x[end - 1])
        xs = np.append(xs, limit)
        ys = np.append(ys, y[end - 1] + t * (y[end] - y[end - 1]))
    return xs, ys


def _normalised_area(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """Trapezoid area under a curve cut at ``limit`` (:func:`_cut`), divided by the limit and capped at 1."""
    return min(1.0, float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2) / limit)


def _checked_scores(scores, name: str) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.size == 0:
        raise ValueError(f"{name} is empty")
    # min() propagates NaN, without the P-sized temporary of isnan(scores).any().
    if np.isnan(scores.min()):
        raise ValueError(f"{name} contains NaN; every score must be a number")
    return scores


def _checked_pixels(masks, maps, images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    masks = np.asarray(masks).astype(bool, copy=False)
    maps = _checked_scores(maps, "maps")
    _check_same_shape(masks, maps, "masks", "maps")
    if images and maps.ndim != 3:
        raise ValueError(f"masks and maps must be N x H x W, got shape {maps.shape}")
    return masks, maps


def _check_same_shape(a: np.ndarray, b: np.ndarray, a_name: str, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a_name} {a.shape} vs {b_name} {b.shape}")


def _check_fpr_limit(fpr_limit: float) -> None:
    if not 0 < fpr_limit <= 1:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
