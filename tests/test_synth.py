"""The synthetic benchmark: MVTec LOCO's layout, deterministic, with a mask for every anomaly."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from ulsad.data import SYNTHETIC_CATEGORIES, DataError, load, synth
from ulsad.metrics import image_auroc

SIZE = 48
COUNTS = dict(n_train=4, n_val=2, n_test=7)  # test: 3 good, 2 logical, 2 structural


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> Path:
    """Every category, a handful of small images each."""
    return synth.generate(tmp_path_factory.mktemp("synthetic"), seed=0, image_size=SIZE, **COUNTS)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_five_loco_like_objects_and_a_texture_lead_and_the_combinatorial_objects_are_a_separate_tier():
    assert synth.LOCO_LIKE_CATEGORIES == ("drink_bottle", "lunch_box", "pin_tray", "bolt_kit", "wire_splice",
                                          "brick_wall")
    assert synth.HARD_CATEGORIES == ("pegboard", "fruit_tray", "cable_pair", "bead_string")
    assert SYNTHETIC_CATEGORIES == synth.LOCO_LIKE_CATEGORIES + synth.HARD_CATEGORIES


def test_a_category_keeps_its_seeds_whatever_categories_exist():
    """The hard tier and the texture draw the images they drew when they were the whole benchmark."""
    assert [synth.image_rng(0, c, "train", 0).integers(1 << 30) for c in ("pegboard", "brick_wall")] == \
        [np.random.default_rng([0, code, 0, 0]).integers(1 << 30) for code in (0, 4)]


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
    again = synth.generate(tmp_path / "again", ["lunch_box", "cable_pair", "brick_wall"], seed=0, image_size=SIZE,
                           **COUNTS)
    other = synth.generate(tmp_path / "other", ["lunch_box"], seed=1, image_size=SIZE, **COUNTS)
    for category in ("lunch_box", "cable_pair", "brick_wall"):
        assert files(again / category) == files(benchmark / category)
    assert files(other / "lunch_box") != files(benchmark / "lunch_box")


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


OBJECTS = [c for c in SYNTHETIC_CATEGORIES if c != "brick_wall"]
LOCO_OBJECTS = list(synth.CONFIGURATIONS)


@pytest.mark.parametrize("category", OBJECTS)
def test_normal_scenes_obey_their_rule_and_every_logical_rule_breaks_it(category):
    for index in range(40):
        assert synth.rule_holds(category, synth.scene(category, "good", np.random.default_rng([0, index])).facts)
        for rule in synth.RULES[category]:
            broken = synth.scene(category, "logical", np.random.default_rng([1, index]), rule)
            assert not synth.rule_holds(category, broken.facts), (rule, broken.facts)


def test_a_rule_a_category_does_not_have_is_an_error():
    with pytest.raises(DataError, match="'reversed' is not a logical anomaly of pegboard; expected one of mismatch"):
        synth.render("pegboard", "logical", np.random.default_rng(0), SIZE, rule="reversed")
    with pytest.raises(DataError, match="with kind 'logical'"):
        synth.render("bead_string", "good", np.random.default_rng(0), SIZE, rule="mismatch")


def blobs(mask: np.ndarray) -> list[np.ndarray]:
    """The connected regions of a mask, largest first."""
    labels, n = ndimage.label(mask)
    return sorted((labels == i for i in range(1, n + 1)), key=lambda b: -b.sum())


def mean_colour(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    return image[region].astype(float).mean(0)


# (category, rule) -> (masks, regions in each mask): what a broken rule marks
MARKED = {("drink_bottle", "mismatch"): (1, 1),  # the label's fruit panel
          ("lunch_box", "missing"): (1, 1), ("lunch_box", "swapped"): (1, 1),  # where the fruit is, or would be
          ("lunch_box", "mix"): (1, 1),  # the chips where granola belongs
          ("pin_tray", "missing"): (1, 1), ("pin_tray", "surplus"): (1, 1),  # the compartment
          ("bolt_kit", "missing"): (1, 1), ("bolt_kit", "surplus"): (1, 1),  # where the item would be; the extra one
          ("bolt_kit", "swapped"): (1, 1),  # the bolt where a nut belongs
          ("wire_splice", "mismatch"): (1, 1), ("wire_splice", "colour"): (1, 1),  # the right connector; the cable
          ("pegboard", "mismatch"): (1, 2),  # the top and the bottom well of one column
          ("fruit_tray", "missing"): (1, 1), ("fruit_tray", "surplus"): (1, 1),  # the right compartment
          ("cable_pair", "mismatch"): (1, 1),  # the right connector
          ("cable_pair", "colour"): (1, 1), ("cable_pair", "missing"): (1, 1),  # the cable, or where it should be
          ("bead_string", "mismatch"): (1, 2),  # the bead and its partner three places earlier
          ("bead_string", "reversed"): (2, 2),  # the two outer pairs of the repeat
          ("brick_wall", "turned"): (1, 1)}  # the turned patch


def test_every_logical_rule_has_its_documented_masks():
    assert set(MARKED) == {(c, r) for c in SYNTHETIC_CATEGORIES for r in synth.RULES[c]}


@pytest.mark.parametrize(("category", "rule"), sorted(MARKED))
def test_the_masks_of_a_broken_rule_cover_the_parts_that_break_it(category, rule):
    n_masks, n_regions = MARKED[category, rule]
    for index in range(6):
        image, masks = synth.render(category, "logical", np.random.default_rng([2, index]), 128, rule=rule)
        assert len(masks) == n_masks
        for mask in masks:
            regions = blobs(mask)
            assert len(regions) == n_regions, (index, [r.sum() for r in regions])
            centre_x = np.nonzero(mask)[1].mean() / 128
            if category == "fruit_tray":  # the right compartment
                assert centre_x > 0.6 and 0.1 < mask.mean() < 0.3
            if (category, rule) == ("cable_pair", "mismatch"):  # the right connector
                assert centre_x > 0.6 and 0.02 < mask.mean() < 0.08
            if (category, rule) == ("wire_splice", "mismatch"):  # the right connector, as tall as its slots
                assert centre_x > 0.6 and 0.03 < mask.mean() < 0.15
            if category == "pin_tray":  # one of the four compartments
                assert 0.1 < mask.mean() < 0.2
            if category == "drink_bottle":  # the fruit panel, low on the label
                assert np.nonzero(mask)[0].mean() / 128 > 0.75
            if n_regions == 2:  # a broken pair: its two items differ in colour, and lie far apart
                a, b = regions
                assert np.abs(mean_colour(image, a) - mean_colour(image, b)).max() > 40
                (ya, xa), (yb, xb) = ndimage.center_of_mass(a), ndimage.center_of_mass(b)
                assert np.hypot(ya - yb, xa - xb) > 0.4 * 128


def test_a_missing_cable_is_marked_where_a_cable_would_run():
    image, masks = synth.render("cable_pair", "logical", np.random.default_rng(3), 128, rule="missing")
    background = np.median(image.reshape(-1, 3), 0)
    # nothing is drawn under the mask: it holds the background only
    assert np.abs(mean_colour(image, masks[0]) - background).max() < 20


@pytest.mark.parametrize("category", LOCO_OBJECTS)
def test_a_training_set_shows_few_configurations_each_many_times(category):
    """The rule is learnable from the training images: every valid configuration occurs, and often."""
    seen = synth.configurations(category, 200)
    assert len(seen) == synth.CONFIGURATIONS[category], seen
    assert min(seen.values()) >= 200 / len(seen) / 2, seen
    assert sum(synth.configurations(category, 100).values()) == 100


def test_the_docs_give_each_category_its_number_of_configurations():
    """docs/synthetic.md's table of the LOCO-like categories says what ``CONFIGURATIONS`` holds."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "synthetic.md").read_text()
    documented = {}
    for line in docs.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[0].strip("`") in synth.CONFIGURATIONS:
            documented[cells[0].strip("`")] = int(cells[3].split(":")[0])
    assert documented == synth.CONFIGURATIONS


def test_each_written_image_is_drawn_by_its_own_generator(benchmark):
    """``image_rng`` is the generator ``generate`` draws an image with (``configurations`` reads its scenes)."""
    for category, split, folder in (("pegboard", "train", "train/good"), ("drink_bottle", "good", "test/good")):
        for index in range(2):
            image, _ = synth.render(category, "good", synth.image_rng(0, category, split, index), SIZE)
            assert np.array_equal(image, np.asarray(Image.open(benchmark / category / folder / f"{index:03d}.png")))


def test_configurations_of_a_category_without_them_is_an_error():
    with pytest.raises(DataError, match="'pegboard' has no counted configurations; expected one of drink_bottle"):
        synth.configurations("pegboard", 10)


@pytest.fixture(scope="module")
def theta():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import synth_difficulty

    return synth_difficulty, synth_difficulty.feature_extractor()


@pytest.fixture(scope="module")
def features_of(theta):
    """Per object category, ImageNet features (128 px) of 100 normal training images and of 60 held-out
    normal, logical and structural images each."""
    sd, extractor = theta
    cache = {}

    def get(category):
        if category not in cache:
            def batch(kind, code, n):
                images = [synth.render(category, kind, np.random.default_rng([0, code, i]), 128)[0] for i in range(n)]
                return sd.features(extractor, torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255)
            cache[category] = {"train": batch("good", 0, 100),
                               **{kind: batch(kind, code, 60) for kind, code in (("good", 1), ("logical", 2),
                                                                                 ("structural", 3))}}
        return cache[category]
    return get


# the share of logical anomalies a patch memory may find beyond normal images' farthest patches
LOCAL_LOOK = {**{c: 0.1 for c in synth.HARD_CATEGORIES}, **{c: 0.2 for c in LOCO_OBJECTS}}


@pytest.mark.parametrize("category", OBJECTS)
def test_normal_images_cover_the_local_appearance_of_logical_anomalies(theta, features_of, category):
    """A patch memory of normal images finds the patches of nearly every logical anomaly about as near as
    those of a held-out normal image; structural damage is often farther."""
    sd, f = theta[0], features_of(category)
    normal = np.percentile(sd.patch_memory_scores(f["train"], f["good"]), 99)
    beyond = {kind: (sd.patch_memory_scores(f["train"], f[kind]) > normal).mean() for kind in ("logical",
                                                                                               "structural")}
    assert beyond["logical"] <= LOCAL_LOOK[category] and beyond["structural"] >= 0.4, beyond


@pytest.mark.parametrize("category", OBJECTS)
def test_a_whole_image_reference_learns_the_loco_like_rules_and_not_the_hard_ones(theta, features_of, category):
    """The nearest training image by layout (4 x 4 cells), scored by its worst cell, tells the logical
    anomalies of a LOCO-like category from normal images; it cannot learn the hard tier's rules."""
    sd, f = theta[0], features_of(category)
    scores = np.r_[sd.worst_cell_scores(f["train"], f["good"]), sd.worst_cell_scores(f["train"], f["logical"])]
    auroc = image_auroc(np.r_[np.zeros(60), np.ones(60)], scores)
    assert auroc >= 0.85 if category in LOCO_OBJECTS else auroc <= 0.75, auroc


def test_each_category_records_what_made_it(benchmark, tmp_path):
    assert synth.stamp(benchmark, "pegboard") == {
        "generator": synth.GENERATOR_VERSION, "seed": 0, "image_size": SIZE,
        "counts": {"train": 4, "validation": 2, "good": 3, "logical": 2, "structural": 2}}
    assert synth.stamp(tmp_path, "pegboard") is None  # nothing there, or made before the stamps


def test_a_file_where_a_category_folder_goes_is_named_not_an_errno(tmp_path, capsys):
    from ulsad.cli import main

    (tmp_path / "pegboard").write_text("the user's notes")
    assert main(["synth", "--root", str(tmp_path), "--categories", "pegboard", "--n-train", "2", "--n-val", "1",
                 "--n-test", "3", "--image-size", "64"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'pegboard'} is a file; expected a folder for the synthetic benchmark\n"
    assert (tmp_path / "pegboard").read_text() == "the user's notes"


def test_a_folder_the_generator_did_not_make_is_never_replaced(tmp_path):
    own = tmp_path / "pegboard" / "train" / "good"
    own.mkdir(parents=True)
    (own / "mine.png").write_bytes(b"the user's image")
    with pytest.raises(DataError, match="not made by the synthetic generator"):
        synth.generate(tmp_path, ["pegboard"], image_size=64, n_train=2, n_val=1, n_test=3)
    assert (own / "mine.png").read_bytes() == b"the user's image"
