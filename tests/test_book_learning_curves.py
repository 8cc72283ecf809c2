"""Learning curves: a fit evaluated every few epochs, one row per evaluation (chapter 7)."""
import numpy as np
import pytest
import torch

from ulsad import data, get_config
from ulsad.book.learning_curves import METRICS, global_map_levels, learning_curve


@pytest.fixture
def root(tmp_path):
    return data.synth.generate(tmp_path, ["pegboard"], image_size=64, n_train=6, n_val=4, n_test=9)


def test_a_learning_curve_has_a_row_per_evaluation_with_metrics_and_losses(root):
    load = lambda split: data.load("synthetic", root, "pegboard", split, image_size=64)  # noqa: E731
    cfg = get_config("smoke", epochs=3)
    rows = learning_curve(cfg, load("train"), load("validation"), load("test"), every=2, label={"run": "a"},
                          levels=True)
    assert [r["epoch"] for r in rows] == [2, 3]  # every 2 epochs, and the last
    for row in rows:
        assert row["run"] == "a" and row["wall_s"] > 0 and row["total"] > 0
        assert all(0 <= row[k] <= 1 for k in ("image_auroc", "pixel_auroc", "aupro")), row
        assert set(METRICS) <= set(row)
        assert row["global.train_mean"] > 0 and row["global.logical_in_mask"] > 0


class RedChannelMaps:
    """A stand-in detector whose raw global map is the image's red channel, so that every level is known."""

    def raw_maps_of(self, images):
        return None, images[:, 0]


def test_global_levels_average_the_map_over_the_images_and_mask_regions_they_name(root):
    train, test = (data.load("synthetic", root, "pegboard", split, image_size=64) for split in ("train", "test"))
    levels = global_map_levels(RedChannelMaps(), data.stack_images(train), test)
    items = [test[i] for i in range(len(test))]
    red = {t: torch.stack([it["image"][0] for it in items if it["type"] == t]) for t in ("good", "logical")}
    inside = torch.stack([it["mask"] for it in items if it["type"] == "logical"]) > 0.5
    assert np.isclose(levels["global.train_mean"], float(data.stack_images(train)[:, 0].mean()))
    assert np.isclose(levels["global.normal_mean"], float(red["good"].mean()))
    assert np.isclose(levels["global.logical_in_mask"], float(red["logical"][inside].mean()))
    assert np.isclose(levels["global.logical_out_mask"], float(red["logical"][~inside].mean()))
