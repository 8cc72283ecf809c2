"""The synthetic benchmark: MVTec LOCO's layout, deterministic, with a mask for every anomaly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ulsad.data import SYNTHETIC_CATEGORIES, DataError, load, synth

SIZE = 48
COUNTS = dict(n_train=4, n_val=2, n_test=7)  # test: 3 good, 2 logical, 2 structural


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> Path:
    """Every category, a handful of small images each."""
    return synth.generate(tmp_path_factory.mktemp("synthetic"), seed=0, image_size=SIZE, **COUNTS)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_there_are_four_object_categories_and_one_texture():
    assert SYNTHETIC_CATEGORIES == ("pegboard", "fruit_tray", "cable_pair", "bead_string", "brick_wall")


@pytest.mark.parametrize("category", SYNTHETIC_CATEGORIES)
def test_each_category_is_written_in_the_loco_layout(benchmark, category):
    cat = benchmark / category
    counts = {folder: len(list((cat / folder).glob("*.png"))) for folder in
              ("train/good", "validation/good", "test/good", "test/logical_anomalies", "test/structural_anomalies")}
    assert counts == {"train/good": 4, "validation/good": 2, "test/good": 3,
                      "test/logical_anomalies": 2, "test/structural_anomalies": 2}
    for kind in ("logical_anomalies", "structural_anomalies"):
        assert sorted(p.name for p in (cat / "ground_truth" / kind).iterdir()) == ["000", "001"]
        assert (cat / "ground_truth" / kind / "000" / "000.png").is_file()
    image = Image.open(cat / "train/good/000.png")
    assert image.size == (SIZE, SIZE) and image.mode == "RGB"


@pytest.mark.parametrize("category", SYNTHETIC_CATEGORIES)
def test_the_loco_loader_reads_it_and_every_anomaly_has_a_non_empty_mask(benchmark, category):
    test = load("synthetic", benchmark, category, "test", image_size=SIZE)
    assert sorted(test.types) == ["good"] * 3 + ["logical"] * 2 + ["structural"] * 2
    assert test.has_masks
    for item in (test[i] for i in range(len(test))):
        assert (item["mask"].sum() > 0) == (item["label"] == 1)
    assert len(load("synthetic", benchmark, category, "validation")) == 2


def test_masks_are_binary_and_anomalies_are_local(benchmark):
    for mask_file in benchmark.glob("*/ground_truth/*/*/*.png"):
        mask = np.asarray(Image.open(mask_file))
        assert set(np.unique(mask)) == {0, 255}, mask_file
        assert (mask > 0).mean() < 0.5, mask_file  # a region, not the whole image


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(benchmark, tmp_path):
    again = synth.generate(tmp_path / "again", ["cable_pair", "brick_wall"], seed=0, image_size=SIZE, **COUNTS)
    other = synth.generate(tmp_path / "other", ["cable_pair"], seed=1, image_size=SIZE, **COUNTS)
    for category in ("cable_pair", "brick_wall"):
        assert files(again / category) == files(benchmark / category)
    assert files(other / "cable_pair") != files(benchmark / "cable_pair")


def test_normal_images_vary(benchmark):
    for category in SYNTHETIC_CATEGORIES:
        folder = benchmark / category / "train/good"
        images = [np.asarray(Image.open(p), dtype=float) for p in sorted(folder.iterdir())]
        # far more than sensor noise (std 4) apart: position, rotation, colour and light change
        assert min(np.abs(a - b).mean() for a, b in zip(images, images[1:])) > 10, category


def test_generating_again_replaces_the_category_and_leaves_no_partial_folder(tmp_path):
    synth.generate(tmp_path, ["pegboard"], image_size=SIZE, n_train=5, n_val=1, n_test=3)
    synth.generate(tmp_path, ["pegboard"], image_size=SIZE, n_train=2, n_val=1, n_test=3)
    assert len(list((tmp_path / "pegboard/train/good").iterdir())) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["pegboard"]


def test_unknown_category_is_an_error(tmp_path):
    with pytest.raises(DataError, match="unknown synthetic categories teapot.*pegboard"):
        synth.generate(tmp_path, ["teapot"])


def test_missing_synthetic_root_says_how_to_make_it(tmp_path):
    with pytest.raises(DataError, match="ulsad synth --root"):
        load("synthetic", tmp_path / "absent", "pegboard", "train")


@pytest.mark.parametrize("bad", [dict(image_size=16), dict(n_test=2), dict(n_train=0), dict(n_val=0)])
def test_impossible_image_size_or_counts_are_an_error(tmp_path, bad):
    with pytest.raises(DataError, match="cannot generate"):
        synth.generate(tmp_path, ["pegboard"], **{**dict(image_size=SIZE, **COUNTS), **bad})
    assert not (tmp_path / "pegboard").exists()
