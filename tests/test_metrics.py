"""ulsad.metrics against brute force: every threshold looped over explicitly, written plainly."""
import json

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from ulsad import metrics


# ---------------------------------------------------------------- brute force

def polyline_area(xs, ys, limit):
    """Trapezoids under (xs, ys) from 0 to limit, the last one cut at the limit by interpolation; / limit."""
    area = 0.0
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
        if x0 >= limit:
            break
        if x1 > limit:
            y1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            x1 = limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / limit


def brute_auroc(labels, scores):
    labels, scores = np.asarray(labels).ravel() != 0, np.asarray(scores).ravel()
    fprs, tprs = [0.0], [0.0]
    for t in sorted(set(scores.tolist()), reverse=True):
        fprs.append(np.mean(scores[~labels] >= t))
        tprs.append(np.mean(scores[labels] >= t))
    return polyline_area(fprs, tprs, 1.0)


def brute_overlap_auc(regions, maps, anomalous, limit):
    """regions: (image index, region mask, saturation); the FPR runs over pixels outside `anomalous`."""
    normal = ~anomalous
    fprs, overlaps = [0.0], [0.0]
    for t in sorted(set(maps.ravel().tolist()), reverse=True):
        above = maps >= t
        fprs.append((above & normal).sum() / normal.sum())
        overlaps.append(np.mean([min((above[i] & region).sum() / s, 1.0) for i, region, s in regions]))
    fprs.append(1.0)
    overlaps.append(1.0)
    return polyline_area(fprs, overlaps, limit)


def components(masks):
    """The connected components (8-connectivity) of each mask, as (image index, region, area)."""
    regions = []
    for i, mask in enumerate(masks):
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        for k in range(1, n + 1):
            regions.append((i, labels == k, int((labels == k).sum())))
    return regions


def brute_aupro(masks, maps, limit):
    return brute_overlap_auc(components(masks), maps, masks.astype(bool), limit)


def random_case(seed, n=3, h=7, w=9, levels=6):
    """Small maps with few distinct levels, so normal and anomalous pixels tie often."""
    rng = np.random.default_rng(seed)
    masks = rng.random((n, h, w)) < 0.25
    masks[0] = False  # a good image
    masks[1, 0, 0] = True  # at least one anomaly
    maps = (rng.integers(0, levels, (n, h, w)) + 2.0 * masks * rng.random((n, h, w))).astype(np.float32)
    return masks, maps


# ---------------------------------------------------------------- AUROC

@pytest.mark.parametrize("seed", range(8))
def test_image_auroc_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(40) < 0.4
    labels[:2] = [False, True]
    scores = rng.integers(0, 10, 40) + labels * rng.random(40)
    assert metrics.image_auroc(labels, scores) == pytest.approx(brute_auroc(labels, scores), abs=1e-12)
    assert metrics.image_auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_pixel_auroc_matches_brute_force(seed):
    masks, maps = random_case(seed)
    assert metrics.pixel_auroc(masks, maps) == pytest.approx(brute_auroc(masks, maps), abs=1e-12)


def test_auroc_ties_count_half():
    # pairs (anomalous, normal): (.5, .5) tie, (.5, .2), (.9, .5), (.9, .2) wins -> 3.5 / 4
    assert metrics.image_auroc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == 0.875
    assert metrics.image_auroc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5


def test_auroc_perfect_and_inverted():
    masks, maps = random_case(0)
    perfect = masks.astype(np.float32) + 0.1 * maps
    assert metrics.pixel_auroc(masks, perfect) == 1.0
    assert metrics.pixel_auroc(masks, -perfect) == 0.0
    assert metrics.image_auroc([0, 0, 1], [0.1, 0.2, 0.3]) == 1.0
    assert metrics.image_auroc([0, 0, 1], [0.3, 0.2, 0.1]) == 0.0


def test_auroc_keeps_float64_distinct():
    # These two scores are equal in float32: casting down would turn a win into a tie.
    scores = np.array([1.0, 1.0 + 1e-12])
    assert metrics.image_auroc([0, 1], scores) == 1.0


# ---------------------------------------------------------------- AUPRO

@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("limit", [0.05, 0.3, 1.0])
def test_aupro_matches_brute_force(seed, limit):
    masks, maps = random_case(seed)
    assert metrics.aupro(masks, maps, limit) == pytest.approx(brute_aupro(masks, maps, limit), abs=1e-12)


def test_aupro_matches_brute_force_continuous_scores():
    rng = np.random.default_rng(11)
    masks = ndimage.binary_dilation(rng.random((4, 12, 12)) < 0.03)
    maps = rng.normal(size=masks.shape) + masks
    assert metrics.aupro(masks, maps) == pytest.approx(brute_aupro(masks, maps, 0.3), abs=1e-12)


def test_aupro_by_hand():
    # Two regions under 8-connectivity: A = {(0,0), (1,1)} (diagonal neighbours), B = {(0,3)}.
    masks = np.array([[[1, 0, 0, 1],
                       [0, 1, 0, 0]]])
    maps = np.array([[[0.8, 0.5, 0.3, 0.6],
                      [0.1, 0.4, 0.2, 0.0]]])
    # threshold 0.8: A half covered -> PRO 1/4; 0.6: B covered -> 3/4; 0.5: FPR 1/5;
    # 0.4: A covered -> PRO 1 at FPR 1/5. Curve (0,0) (0,.25) (0,.75) (.2,.75) (.2,1) ... (1,1).
    assert metrics.aupro(masks, maps, 0.3) == pytest.approx((0.2 * 0.75 + 0.1 * 1.0) / 0.3)
    assert metrics.aupro(masks, maps, 1.0) == pytest.approx(0.2 * 0.75 + 0.8 * 1.0)
    # With 4-connectivity the three single pixels would give (0.2 * 2/3 + 0.1) / 0.3 instead.


def test_aupro_tie_between_region_and_normal_pixel_is_a_slope():
    masks = np.array([[[1, 0, 0, 0]]])
    maps = np.array([[[0.5, 0.5, 0.2, 0.1]]])
    # At 0.5 the region and one of three normal pixels cross together: (0, 0) -> (1/3, 1), a straight line.
    # Up to FPR 0.3 the area is the triangle 0.3 * 0.9 / 2.
    assert metrics.aupro(masks, maps, 0.3) == pytest.approx(0.3 * 0.9 / 2 / 0.3)


def test_aupro_perfect_and_inverted():
    masks, maps = random_case(2)
    perfect = masks + 0.1 * maps
    assert metrics.aupro(masks, perfect) == pytest.approx(1.0, abs=1e-12)
    assert metrics.aupro(masks, -perfect) == 0.0


def test_pro_curve_by_hand():
    # The case of test_aupro_by_hand: each distinct region score gives two points (above it, at it),
    # then the curve is cut at the limit with an interpolated point.
    masks = np.array([[[1, 0, 0, 1],
                       [0, 1, 0, 0]]])
    maps = np.array([[[0.8, 0.5, 0.3, 0.6],
                      [0.1, 0.4, 0.2, 0.0]]])
    fpr, pro = metrics.pro_curve(masks, maps, 0.3)
    np.testing.assert_allclose(fpr, [0, 0, 0, 0, 0, 0.2, 0.2, 0.3])
    np.testing.assert_allclose(pro, [0, 0, 0.25, 0.25, 0.75, 0.75, 1, 1])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("limit", [0.3, 1.0])
def test_pro_curve_passes_every_threshold_and_is_what_aupro_integrates(seed, limit):
    masks, maps = random_case(seed)
    fpr, pro = metrics.pro_curve(masks, maps, limit)
    assert fpr[0] == pro[0] == 0 and fpr[-1] == pytest.approx(limit)
    assert (np.diff(fpr) >= 0).all() and (np.diff(pro) >= -1e-12).all()
    assert polyline_area(fpr, pro, limit) == pytest.approx(metrics.aupro(masks, maps, limit), abs=1e-12)
    normal, regions = ~masks, components(masks)
    for t in set(maps.ravel().tolist()):
        above = maps >= t
        x = (above & normal).sum() / normal.sum()
        y = np.mean([(above[i] & region).sum() / area for i, region, area in regions])
        if x <= limit:
            assert on_polyline(fpr, pro, x, y), f"threshold {t}: ({x}, {y}) is not on the curve"


def on_polyline(xs, ys, x, y, tol=1e-12):
    """Whether (x, y) lies on one of the segments between consecutive points (xs, ys)."""
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
        inside = min(x0, x1) - tol <= x <= max(x0, x1) + tol and min(y0, y1) - tol <= y <= max(y0, y1) + tol
        if inside and abs((x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)) <= tol:
            return True
    return False


# ---------------------------------------------------------------- sPRO

def random_defects(seed, n=3, h=7, w=9):
    """Random, possibly overlapping, defects with random saturations, and tie-rich maps."""
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, 5, (n, h, w)).astype(np.float64)
    defects = [[] for _ in range(n)]
    for i in range(1, n):
        for _ in range(rng.integers(1, 4)):
            mask = np.zeros((h, w), bool)
            y, x = rng.integers(0, h - 2), rng.integers(0, w - 3)
            mask[y:y + rng.integers(1, 3), x:x + rng.integers(1, 4)] = True
            maps[i][mask] += rng.random(mask.sum())
            defects[i].append((mask, int(rng.integers(1, mask.sum() + 1))))
    return defects, maps


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("limit", [0.05, 0.3, 1.0])
def test_spro_matches_brute_force(seed, limit):
    defects, maps = random_defects(seed)
    regions = [(i, mask, s) for i, image in enumerate(defects) for mask, s in image]
    anomalous = np.zeros(maps.shape, bool)
    for i, mask, _ in regions:
        anomalous[i] |= mask
    expected = brute_overlap_auc(regions, maps, anomalous, limit)
    assert metrics.spro(defects, maps, limit) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_spro_without_saturation_on_components_is_aupro(seed):
    masks, maps = random_case(seed)
    defects = [[] for _ in masks]
    for i, region, area in components(masks):
        defects[i].append((region, area))
    assert metrics.spro(defects, maps, 0.3) == pytest.approx(metrics.aupro(masks, maps, 0.3), abs=1e-12)


def test_saturation_raises_overlap():
    masks = np.zeros((1, 4, 4), bool)
    masks[0, :2, :2] = True
    maps = np.zeros((1, 4, 4))
    maps[0][masks[0]] = [1.0, -1.0, -1.0, -1.0]  # one of the four defect pixels found, before any normal one
    assert metrics.spro([[(masks[0], 1)]], maps) == 1.0
    assert metrics.spro([[(masks[0], 4)]], maps) == pytest.approx(0.25)


def test_loco_config_and_regions(tmp_path):
    path = tmp_path / "defects_config.json"
    path.write_text(json.dumps([
        {"defect_name": "missing_part", "pixel_value": 255, "saturation_threshold": 6, "relative_saturation": False},
        {"defect_name": "wrong_colour", "pixel_value": 100, "saturation_threshold": 0.5, "relative_saturation": True},
    ]))
    config = metrics.load_defects_config(path)
    assert config[255].defect_name == "missing_part" and config[100].relative_saturation
    big, small, tiny = (np.zeros((5, 5), np.uint8) for _ in range(3))
    big[:3, :3] = 255  # 9 pixels, absolute threshold 6
    small[4, :3] = 100  # 3 pixels, half of them: int(1.5) = 1
    tiny[0, 4] = 255  # 1 pixel: the absolute threshold is capped at the area
    regions = metrics.spro_regions([big, small, tiny], config)
    assert [s for _, s in regions] == [6, 1, 1]
    assert regions[0][0].dtype == bool and regions[0][0].sum() == 9
    with pytest.raises(ValueError, match="not in the defects config"):
        metrics.spro_regions([np.full((2, 2), 7, np.uint8)], config)
    with pytest.raises(ValueError, match="exactly one defect value"):
        metrics.spro_regions([np.array([[100, 255]], np.uint8)], config)


# ---------------------------------------------------------------- errors

def test_no_anomalies_is_an_error_not_nan():
    masks = np.zeros((2, 4, 4), bool)
    maps = np.random.default_rng(0).random((2, 4, 4))
    for call in (lambda: metrics.pixel_auroc(masks, maps), lambda: metrics.aupro(masks, maps),
                 lambda: metrics.spro([[], []], maps)):
        with pytest.raises(ValueError, match="anomal"):
            call()
    with pytest.raises(ValueError, match="0 anomalous"):
        metrics.image_auroc([0, 0, 0], [0.1, 0.2, 0.3])


def test_no_normals_is_an_error():
    masks = np.ones((2, 4, 4), bool)
    maps = np.random.default_rng(0).random((2, 4, 4))
    with pytest.raises(ValueError, match="0 normal"):
        metrics.pixel_auroc(masks, maps)
    with pytest.raises(ValueError, match="normal pixels"):
        metrics.aupro(masks, maps)
    with pytest.raises(ValueError, match="0 normal"):
        metrics.image_auroc([1, 1], [0.1, 0.2])


def test_shape_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 4, 4\).*\(2, 4, 5\)"):
        metrics.aupro(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        metrics.image_auroc([0, 1, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(4, 5\)"):
        metrics.spro([[(np.ones((4, 4)), 1)]], np.zeros((1, 4, 5)))


def test_nan_scores_are_an_error():
    maps = np.zeros((1, 3, 3))
    maps[0, 1, 1] = np.nan
    masks = np.eye(3)[None]
    for call in (lambda: metrics.pixel_auroc(masks, maps), lambda: metrics.aupro(masks, maps),
                 lambda: metrics.image_auroc([0, 1], [np.nan, 1.0])):
        with pytest.raises(ValueError, match="NaN"):
            call()


def test_bad_arguments():
    masks, maps = random_case(0)
    with pytest.raises(ValueError, match="fpr_limit"):
        metrics.aupro(masks, maps, fpr_limit=0.0)
    with pytest.raises(ValueError, match="saturation"):
        metrics.spro([[(masks[1], masks[1].sum() + 1)], [], []], maps)
    with pytest.raises(ValueError, match="N x H x W"):
        metrics.aupro(masks[0], maps[0])
