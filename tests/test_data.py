"""The loaders read each dataset's published layout unchanged (fixture trees of tiny images made here)."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ulsad.data import DATASETS, SYNTHETIC_CATEGORIES, DataError, categories, load

SIZE = 16  # the image_size asked of the loaders in these tests


def write_image(path: Path, size=(20, 20), colour=(200, 100, 50), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(path)
    return path


def write_mask(path: Path, size=(20, 20), box=(0, 0, 10, 20), value=255) -> Path:
    """A mask that is ``value`` inside ``box`` (left, top, right, bottom) and 0 elsewhere."""
    mask = np.zeros(size[::-1], dtype=np.uint8)
    mask[box[1]:box[3], box[0]:box[2]] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(path)
    return path


def make_mvtec(root: Path, category="bottle", n_train=10, mode="RGB") -> Path:
    """MVTec AD: train/good, test/good, test/<defect>, ground_truth/<defect>/<name>_mask.png."""
    cat = root / category
    for i in range(n_train):
        write_image(cat / "train/good" / f"{i:03d}.png", mode=mode)
    for i in range(2):
        write_image(cat / "test/good" / f"{i:03d}.png", mode=mode)
        write_image(cat / "test/broken_large" / f"{i:03d}.png", mode=mode)
        write_mask(cat / "ground_truth/broken_large" / f"{i:03d}_mask.png")
    return root


def files_and_times(root: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


# --- registry ---------------------------------------------------------------

def test_registry_lists_every_dataset_and_its_categories():
    assert set(DATASETS) == {"mvtec_ad", "mvtec_loco", "btad", "mpdd", "visa", "synthetic", "folder"}
    assert len(DATASETS["mvtec_ad"]) == 15 and "screw" in DATASETS["mvtec_ad"]
    assert DATASETS["mvtec_loco"] == ["breakfast_box", "juice_bottle", "pushpins", "screw_bag", "splicing_connectors"]
    assert DATASETS["btad"] == ["01", "02", "03"]
    assert len(DATASETS["mpdd"]) == 6 and len(DATASETS["visa"]) == 12
    assert DATASETS["synthetic"] == list(SYNTHETIC_CATEGORIES)


def test_folder_categories_are_the_subfolders_with_a_train_folder(tmp_path):
    make_mvtec(tmp_path, "cats")
    make_mvtec(tmp_path, "dogs")
    (tmp_path / "notes").mkdir()
    assert DATASETS["folder"] == []
    assert categories("folder", tmp_path) == ["cats", "dogs"]


# --- MVTec AD and MPDD ------------------------------------------------------

def test_mvtec_items_are_dicts_of_image_mask_label_type_path(tmp_path):
    test = load("mvtec_ad", make_mvtec(tmp_path), "bottle", "test", image_size=SIZE)
    assert len(test) == 4 and test.has_masks
    assert test.labels == [1, 1, 0, 0] and test.types == ["broken_large"] * 2 + ["good"] * 2
    item = test[0]
    assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert torch.allclose(item["image"][:, 0, 0], torch.tensor([200, 100, 50]) / 255)
    assert item["mask"].shape == (SIZE, SIZE) and item["mask"].dtype == torch.float32
    # the mask covers the left half of the image, resized with nearest neighbour: exact 0/1 halves
    assert item["mask"][:, : SIZE // 2].eq(1).all() and item["mask"][:, SIZE // 2:].eq(0).all()
    assert item["label"] == 1 and item["type"] == "broken_large" and item["path"] == test.paths[0]
    assert test[3]["mask"].eq(0).all() and test[3]["label"] == 0 and test[3]["type"] == "good"


def test_validation_is_a_seeded_held_out_part_of_train_good_and_train_excludes_it(tmp_path):
    make_mvtec(tmp_path, n_train=20)
    train = load("mvtec_ad", tmp_path, "bottle", "train", val_fraction=0.25, seed=3)
    val = load("mvtec_ad", tmp_path, "bottle", "validation", val_fraction=0.25, seed=3)
    assert len(val) == 5 and len(train) == 15
    assert not set(train.paths) & set(val.paths)
    assert sorted(train.paths + val.paths) == sorted(str(p) for p in (tmp_path / "bottle/train/good").iterdir())
    assert set(val.labels) == {0} and set(val.types) == {"good"}
    again = load("mvtec_ad", tmp_path, "bottle", "validation", val_fraction=0.25, seed=3)
    other = load("mvtec_ad", tmp_path, "bottle", "validation", val_fraction=0.25, seed=4)
    assert again.paths == val.paths and set(other.paths) != set(val.paths)


def test_grayscale_mvtec_category_becomes_three_equal_rgb_channels(tmp_path):
    make_mvtec(tmp_path, "grid", mode="L")
    image = load("mvtec_ad", tmp_path, "grid", "train", image_size=SIZE)[0]["image"]
    assert image.shape == (3, SIZE, SIZE)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_mpdd_reads_the_mvtec_layout(tmp_path):
    test = load("mpdd", make_mvtec(tmp_path, "tubes"), "tubes", "test", image_size=SIZE)
    assert test.labels.count(1) == 2 and test[0]["mask"].sum() > 0


# --- MVTec LOCO -------------------------------------------------------------

def make_loco(root: Path, category="pushpins") -> Path:
    """LOCO: non-square images, validation/good, several masks per image in ground_truth/<type>/<NNN>/."""
    cat, size = root / category, (30, 20)
    for split, n in (("train/good", 4), ("validation/good", 2), ("test/good", 2)):
        for i in range(n):
            write_image(cat / split / f"{i:03d}.png", size)
    write_image(cat / "test/logical_anomalies/000.png", size)
    # two defects, stored as LOCO does with different non-zero values: merged into one 0/1 mask
    write_mask(cat / "ground_truth/logical_anomalies/000/000.png", size, box=(0, 0, 15, 10), value=255)
    write_mask(cat / "ground_truth/logical_anomalies/000/001.png", size, box=(15, 10, 30, 20), value=7)
    write_image(cat / "test/structural_anomalies/000.png", size)
    write_mask(cat / "ground_truth/structural_anomalies/000/000.png", size)
    return root


def test_loco_merges_several_masks_per_image_and_names_types_logical_and_structural(tmp_path):
    test = load("mvtec_loco", make_loco(tmp_path), "pushpins", "test", image_size=SIZE)
    assert sorted(test.types) == ["good", "good", "logical", "structural"]
    logical = test[test.types.index("logical")]
    assert logical["image"].shape == (3, SIZE, SIZE)  # LOCO images are not square; resized to S x S
    expected = torch.zeros(SIZE, SIZE)
    expected[: SIZE // 2, : SIZE // 2] = 1
    expected[SIZE // 2:, SIZE // 2:] = 1
    assert torch.equal(logical["mask"], expected)


def test_loco_validation_is_its_own_validation_folder(tmp_path):
    make_loco(tmp_path)
    val = load("mvtec_loco", tmp_path, "pushpins", "validation", val_fraction=0.5)
    train = load("mvtec_loco", tmp_path, "pushpins", "train", val_fraction=0.5)
    assert [Path(p).parent.parent.name for p in val.paths] == ["validation"] * 2
    assert len(train) == 4  # nothing held out of train


def test_loco_masks_without_their_image_are_an_error(tmp_path):
    make_loco(tmp_path)
    write_mask(tmp_path / "pushpins/ground_truth/logical_anomalies/005/000.png")
    with pytest.raises(DataError, match="005.*masks without their image"):
        load("mvtec_loco", tmp_path, "pushpins", "test")


# --- BTAD -------------------------------------------------------------------

def test_btad_reads_ok_and_ko_folders_with_mixed_bmp_and_png(tmp_path):
    cat = tmp_path / "03"
    for i in range(5):
        write_image(cat / "train/ok" / f"{i:04d}.bmp")
    write_image(cat / "test/ok/0000.bmp")
    write_image(cat / "test/ko/0000.bmp")
    write_mask(cat / "ground_truth/ko/0000.png")  # same name, other extension
    write_image(cat / "test/ko/0001.png")
    write_mask(cat / "ground_truth/ko/0001.bmp")
    test = load("btad", tmp_path, "03", "test", image_size=SIZE)
    assert test.labels == [1, 1, 0] and test.types == ["ko", "ko", "good"]
    assert all(test[i]["mask"].sum() == SIZE * SIZE / 2 for i in (0, 1))
    assert len(load("btad", tmp_path, "03", "train")) == 4


# --- VisA -------------------------------------------------------------------

def make_visa(root: Path) -> Path:
    """VisA: images under <cat>/Data/Images/{Normal,Anomaly}, split in split_csv/1cls.csv (paths relative to root)."""
    rows = []
    for i in range(6):
        image = f"candle/Data/Images/Normal/{i:04d}.JPG"
        write_image(root / image)
        rows.append(["candle", "train" if i < 5 else "test", "normal", image, ""])
    image, mask = "candle/Data/Images/Anomaly/000.JPG", "candle/Data/Masks/Anomaly/000.png"
    write_image(root / image)
    write_mask(root / mask, value=1)  # VisA stores defect ids, not 255
    rows.append(["candle", "test", "anomaly", image, mask])
    rows.append(["pcb1", "train", "normal", "pcb1/Data/Images/Normal/0000.JPG", ""])
    (root / "split_csv").mkdir(parents=True)
    with open(root / "split_csv/1cls.csv", "w", newline="") as f:
        csv.writer(f).writerows([["object", "split", "label", "image", "mask"], *rows])
    return root


def test_visa_split_comes_from_its_csv_and_masks_with_defect_ids_are_binary(tmp_path):
    make_visa(tmp_path)
    test = load("visa", tmp_path, "candle", "test", image_size=SIZE)
    assert test.labels == [0, 1] and test.types == ["good", "anomaly"]
    assert test[1]["mask"].max() == 1 and test[1]["mask"].sum() == SIZE * SIZE / 2
    train = load("visa", tmp_path, "candle", "train", val_fraction=0.2)
    val = load("visa", tmp_path, "candle", "validation", val_fraction=0.2)
    assert len(train) == 4 and len(val) == 1


def test_visa_file_listed_in_the_csv_but_missing_is_an_error(tmp_path):
    make_visa(tmp_path)
    (tmp_path / "candle/Data/Masks/Anomaly/000.png").unlink()
    with pytest.raises(DataError, match="000.png.*not found"):
        load("visa", tmp_path, "candle", "test")


def test_visa_without_its_split_csv_is_an_error(tmp_path):
    make_visa(tmp_path)
    (tmp_path / "split_csv/1cls.csv").unlink()
    with pytest.raises(DataError, match="1cls.csv"):
        load("visa", tmp_path, "candle", "train")


# --- your own folder --------------------------------------------------------

def test_folder_without_ground_truth_has_no_masks_and_empty_masks(tmp_path):
    make_mvtec(tmp_path, "widgets")
    shutil.rmtree(tmp_path / "widgets/ground_truth")
    test = load("folder", tmp_path, "widgets", "test", image_size=SIZE)
    assert not test.has_masks and test.labels.count(1) == 2
    assert all(test[i]["mask"].eq(0).all() for i in range(len(test)))


def test_folder_with_ground_truth_reads_masks_like_mvtec(tmp_path):
    test = load("folder", make_mvtec(tmp_path, "widgets"), "widgets", "test", image_size=SIZE)
    assert test.has_masks and test[0]["mask"].sum() > 0


def test_folder_of_16_bit_images_reads_as_its_8_bit_version(tmp_path):
    # the same picture at 8 and 16 bit; Pillow's convert("RGB") used to clip the 16-bit one to white
    picture = np.linspace(0, 255, 20 * 20).reshape(20, 20).round().astype(np.uint8)
    for depth, values in (("eight", picture), ("sixteen", picture.astype(np.uint16) * 257)):
        for i in range(10):
            path = tmp_path / depth / "train/good" / f"{i:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(values).save(path)
    eight, sixteen = (load("folder", tmp_path, depth, "train", image_size=SIZE)[0]["image"]
                      for depth in ("eight", "sixteen"))
    assert sixteen.mean() < 0.6 and (sixteen - eight).abs().max() <= 1 / 255 + 1e-6


# --- bad input --------------------------------------------------------------

def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_unknown_dataset_names_the_known_ones(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'mvtec'.*mvtec_ad"):
        load("mvtec", tmp_path, "bottle", "train")


def test_unknown_split_is_an_error(tmp_path):
    with pytest.raises(DataError, match="unknown split 'val'"):
        load("mvtec_ad", make_mvtec(tmp_path), "bottle", "val")


def test_missing_root_says_how_to_get_the_data(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: dataset root not found.*ulsad download mvtec_ad"):
        load("mvtec_ad", tmp_path / "nowhere", "bottle", "train")


def test_unknown_category_names_the_known_ones(tmp_path):
    with pytest.raises(DataError, match="unknown mvtec_ad category 'banana'.*bottle"):
        load("mvtec_ad", make_mvtec(tmp_path), "banana", "train")


def test_missing_category_folder_is_an_error(tmp_path):
    make_mvtec(tmp_path)
    with pytest.raises(DataError, match="capsule.*folder not found"):
        load("mvtec_ad", tmp_path, "capsule", "train")


def test_empty_train_set_names_the_folder(tmp_path):
    (tmp_path / "bottle/train/good").mkdir(parents=True)
    (tmp_path / "bottle/train/good/readme.txt").write_text("not an image")
    with pytest.raises(DataError, match="train/good: no images found"):
        load("mvtec_ad", tmp_path, "bottle", "train")


def test_too_few_training_images_to_hold_out_a_validation_set(tmp_path):
    make_mvtec(tmp_path, n_train=1)
    with pytest.raises(DataError, match="only 1 normal training image"):
        load("mvtec_ad", tmp_path, "bottle", "validation")


@pytest.mark.parametrize("fraction", [0, 1, -0.1])
def test_validation_fraction_outside_zero_one_is_an_error(tmp_path, fraction):
    with pytest.raises(DataError, match="val_fraction"):
        load("mvtec_ad", make_mvtec(tmp_path), "bottle", "train", val_fraction=fraction)


def test_unreadable_image_is_reported_with_its_path(tmp_path):
    make_mvtec(tmp_path)
    path = tmp_path / "bottle/test/good/000.png"
    path.write_bytes(b"this is not a png")
    test = load("mvtec_ad", tmp_path, "bottle", "test")
    with pytest.raises(DataError, match="000.png: cannot read this image"):
        test[test.paths.index(str(path))]


def test_truncated_image_is_reported_with_its_path(tmp_path):
    make_mvtec(tmp_path)
    path = tmp_path / "bottle/test/good/001.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-200])
    test = load("mvtec_ad", tmp_path, "bottle", "test")
    with pytest.raises(DataError, match="001.png: cannot read this image"):
        test[test.paths.index(str(path))]


def test_mask_of_another_size_than_its_image_is_an_error_not_stretched(tmp_path):
    make_mvtec(tmp_path)
    write_mask(tmp_path / "bottle/ground_truth/broken_large/000_mask.png", size=(40, 20))
    test = load("mvtec_ad", tmp_path, "bottle", "test", image_size=SIZE)
    with pytest.raises(DataError, match="000_mask.png: mask of 40x20 pixels for an image of 20x20"):
        test[test.paths.index(str(tmp_path / "bottle/test/broken_large/000.png"))]


def test_mask_without_its_image_is_an_error(tmp_path):
    make_mvtec(tmp_path)
    write_mask(tmp_path / "bottle/ground_truth/broken_large/009_mask.png")
    with pytest.raises(DataError, match="009_mask.png: mask without its image"):
        load("mvtec_ad", tmp_path, "bottle", "test")


def test_anomalous_image_without_its_mask_is_an_error(tmp_path):
    make_mvtec(tmp_path)
    (tmp_path / "bottle/ground_truth/broken_large/001_mask.png").unlink()
    with pytest.raises(DataError, match="001.png: no ground-truth mask"):
        load("mvtec_ad", tmp_path, "bottle", "test")


def test_loaders_never_write_into_the_dataset_folder(tmp_path):
    make_mvtec(tmp_path)
    make_loco(tmp_path)
    before = files_and_times(tmp_path)
    for name, category in (("mvtec_ad", "bottle"), ("mvtec_loco", "pushpins")):
        for split in ("train", "validation", "test"):
            data = load(name, tmp_path, category, split)
            [data[i] for i in range(len(data))]
    assert files_and_times(tmp_path) == before
