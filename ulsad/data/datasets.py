"""Loaders for the five benchmarks and for a folder of your own images.

Each loader reads its dataset's published layout unchanged (docs/design.md,
"Dataset layouts") and turns ``(root, category, split)`` into a list of
:class:`Sample` records: paths, labels and mask files, nothing decoded yet.
:class:`AnomalyDataset` decodes them on access, so listing a split is cheap and
a damaged file is reported by name when it is first read.

Splits. ``train`` and ``validation`` hold normal images only, ``test`` holds
normal and anomalous ones. MVTec LOCO (and the synthetic benchmark, which uses
its layout) ships ``validation/good``. The other datasets have no validation
set, and the paper's implementation then calibrates on the *test* set; here a
deterministic, seeded fraction of ``train/good`` is held out instead, and
``train`` excludes exactly those images.

Nothing here ever writes into the dataset folder.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .errors import DataError
from .images import IMAGE_SUFFIXES, image_tensor, open_image, read_mask
from .synth import SYNTHETIC_CATEGORIES

DATASETS: dict[str, list[str]] = {
    "mvtec_ad": ["bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
                 "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper"],
    "mvtec_loco": ["breakfast_box", "juice_bottle", "pushpins", "screw_bag", "splicing_connectors"],
    "btad": ["01", "02", "03"],
    "mpdd": ["bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes"],
    "visa": ["candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2",
             "pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum"],
    "synthetic": list(SYNTHETIC_CATEGORIES),
    "folder": [],  # your own images: the categories are the subfolders of the root
}
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Sample:
    """One image of a split, before decoding: its file, label, type and mask files."""

    path: Path
    label: int  # 0 normal, 1 anomalous
    type: str  # "good", the defect name, or "logical"/"structural" for LOCO
    masks: tuple[Path, ...] = ()  # merged on access; none for normal images


class AnomalyDataset(Dataset):
    """Decodes samples into ``{"image", "mask", "label", "type", "path"}`` dicts.

    ``image`` is float32 3 x S x S in [0, 1] (bilinear, antialiased resize; gray
    becomes RGB; 16-bit and float files by their real range, see
    :mod:`ulsad.data.images`), ``mask`` float32 S x S of 0/1 (nearest-neighbour
    resize; all zeros for normal images; a mask must have its image's size).
    ``paths``, ``labels``, ``types`` and ``has_masks`` describe the split
    without decoding anything. ``has_masks`` says whether
    the dataset provides ground-truth masks for its anomalous test images.
    """

    def __init__(self, samples: list[Sample], image_size: int, has_masks: bool):
        self.samples = samples
        self.image_size = image_size
        self.has_masks = has_masks
        self.paths = [str(s.path) for s in samples]
        self.labels = [s.label for s in samples]
        self.types = [s.type for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image = open_image(sample.path)
        mask = torch.zeros(self.image_size, self.image_size, dtype=torch.bool)
        for mask_path in sample.masks:  # LOCO has one file per defect: merged
            mask |= read_mask(mask_path, (image.height, image.width), self.image_size)
        return {
            "image": image_tensor(image, sample.path, self.image_size),
            "mask": mask.float(),
            "label": sample.label,
            "type": sample.type,
            "path": str(sample.path),
        }


def load(name: str, root, category: str, split: str, image_size: int = 256,
         val_fraction: float = 0.1, seed: int = 0) -> AnomalyDataset:
    """The ``split`` of ``category`` of dataset ``name`` stored under ``root``.

    ``root`` is the folder that holds the dataset's categories (what
    :func:`ulsad.data.download` fills). ``split`` is ``train``, ``validation``
    or ``test``. For every dataset except MVTec LOCO and ``synthetic``,
    ``validation`` is a seeded random ``val_fraction`` (at least one image) of
    ``train/good`` and ``train`` is the rest, so the two never overlap and the
    same ``seed`` always gives the same split. LOCO's own ``validation/good`` is
    used as is and ``val_fraction``/``seed`` are ignored.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root not found; expected a folder holding the {name} categories "
                        f"({_how_to_get(name, root)})")
    known = categories(name, root)
    if category not in known:
        raise DataError(f"unknown {name} category {category!r} in {root}; "
                        f"expected one of {', '.join(known) or '(none found)'}")
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction={val_fraction}; expected a fraction between 0 and 1 (exclusive)")
    loader = _LOADERS[name]
    if name in ("mvtec_loco", "synthetic"):
        samples, has_masks = loader(root, category, split)
    else:
        samples, has_masks = loader(root, category, "test" if split == "test" else "train")
        if split != "test":
            samples = _hold_out(samples, split, val_fraction, seed)
    return AnomalyDataset(samples, image_size, has_masks)


def categories(name: str, root=None) -> list[str]:
    """The categories of dataset ``name``; for ``folder``, the subfolders of ``root`` that have ``train/``."""
    if name != "folder":
        return DATASETS[name]
    if root is None or not Path(root).is_dir():
        raise DataError(f"{root}: folder not found; expected a folder with one subfolder per category")
    return sorted(p.name for p in Path(root).iterdir() if (p / "train").is_dir())


def _how_to_get(name: str, root: Path) -> str:
    if name == "synthetic":
        return f"make it with: python -m ulsad synth --root {root}"
    if name == "folder":
        return "<category>/train/good, <category>/test/<type>, optional <category>/ground_truth/<type>/<name>_mask.png"
    return f"get it with: python -m ulsad download {name} --root {root}"


def _hold_out(samples: list[Sample], split: str, val_fraction: float, seed: int) -> list[Sample]:
    """The validation part (a seeded ``val_fraction``, at least one image) or the rest (train)."""
    n_val = max(1, round(val_fraction * len(samples)))
    if n_val >= len(samples):
        folder = samples[0].path.parent
        raise DataError(f"{folder}: only {len(samples)} normal training image(s); expected more than {n_val} "
                        f"so that val_fraction={val_fraction} leaves some for training")
    # sort first so that the split depends on the files, not on the order the filesystem lists them
    ordered = sorted(samples, key=lambda s: str(s.path))
    chosen = set(np.random.default_rng(seed).permutation(len(ordered))[:n_val].tolist())
    return [s for i, s in enumerate(ordered) if (i in chosen) == (split == "validation")]


def _images(folder: Path) -> list[Path]:
    """The image files of a folder, sorted; a missing or empty folder is an error."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; expected a folder of images")
    images = sorted(p for p in folder.iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not images:
        raise DataError(f"{folder}: no images found; expected {'/'.join(IMAGE_SUFFIXES)} files")
    return images


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; expected one subfolder per image type")
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _match_masks(images: list[Path], mask_folder: Path) -> list[tuple[Path, ...]]:
    """One mask per image, named ``<stem>_mask.<ext>`` (MVTec) or ``<stem>.<ext>`` (BTAD)."""
    masks = {p.stem.removesuffix("_mask"): p for p in _images(mask_folder)}
    stems = {p.stem for p in images}
    for stem, mask in masks.items():
        if stem not in stems:
            raise DataError(f"{mask}: mask without its image; expected an image {stem}.* in {images[0].parent}")
    for image in images:
        if image.stem not in masks:
            raise DataError(f"{image}: no ground-truth mask; expected {mask_folder / image.stem}_mask.png "
                            f"(or {image.stem}.png)")
    return [(masks[p.stem],) for p in images]


def _mvtec_layout(category_dir: Path, split: str, good: str = "good",
                  masks_optional: bool = False) -> tuple[list[Sample], bool]:
    """``train/<good>``, ``test/<good>``, ``test/<defect>``, ``ground_truth/<defect>/<mask>``.

    Shared by MVTec AD, MPDD and BTAD (``good="ok"``), and by ``folder``, where
    ground truth may be absent: then the anomalous images get empty masks and
    only image-level metrics make sense.
    """
    truth = category_dir / "ground_truth"
    has_masks = truth.is_dir() or not masks_optional
    if split == "train":
        return [Sample(p, 0, "good") for p in _images(category_dir / "train" / good)], has_masks
    samples = []
    for folder in _subfolders(category_dir / "test"):
        images = _images(folder)
        if folder.name == good:
            samples += [Sample(p, 0, "good") for p in images]
            continue
        masks = _match_masks(images, truth / folder.name) if has_masks else [()] * len(images)
        samples += [Sample(p, 1, folder.name, m) for p, m in zip(images, masks)]
    return samples, has_masks


def _mvtec(root: Path, category: str, split: str):
    return _mvtec_layout(root / category, split)


def _btad(root: Path, category: str, split: str):
    return _mvtec_layout(root / category, split, good="ok")


def _folder(root: Path, category: str, split: str):
    return _mvtec_layout(root / category, split, masks_optional=True)


def _loco(root: Path, category: str, split: str) -> tuple[list[Sample], bool]:
    """MVTec LOCO: ``ground_truth/<type>/<NNN>/*.png`` holds one mask per defect of image ``<NNN>``."""
    category_dir = root / category
    if split != "test":
        return [Sample(p, 0, "good") for p in _images(category_dir / split / "good")], True
    samples = []
    for folder in _subfolders(category_dir / "test"):
        images = _images(folder)
        if folder.name == "good":
            samples += [Sample(p, 0, "good") for p in images]
            continue
        truth = category_dir / "ground_truth" / folder.name
        stems = {p.stem for p in images}
        for mask_dir in _subfolders(truth):
            if mask_dir.name not in stems:
                raise DataError(f"{mask_dir}: masks without their image; expected {folder / mask_dir.name}.png")
        kind = folder.name.removesuffix("_anomalies")  # logical_anomalies -> logical
        samples += [Sample(p, 1, kind, tuple(_images(truth / p.stem))) for p in images]
    return samples, True


def _visa(root: Path, category: str, split: str) -> tuple[list[Sample], bool]:
    """VisA: the split is ``split_csv/1cls.csv`` (object, split, label, image, mask), paths relative to root."""
    table = root / "split_csv" / "1cls.csv"
    if not table.is_file():
        raise DataError(f"{table}: split file not found; expected VisA's split_csv/1cls.csv under the root")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {"object", "split", "label", "image", "mask"}
    if not rows or not columns <= set(rows[0]):
        raise DataError(f"{table}: expected a header with columns {', '.join(sorted(columns))} and rows")
    rows = [r for r in rows if r["object"] == category and r["split"] == split]
    if not rows:
        raise DataError(f"{table}: no {split} rows for object {category!r}")
    samples = []
    for row in rows:
        if row["label"] not in ("normal", "anomaly"):
            raise DataError(f"{table}: label {row['label']!r} of {row['image']}; expected normal or anomaly")
        anomalous = row["label"] == "anomaly"
        if anomalous and not row["mask"]:
            raise DataError(f"{table}: anomalous image {row['image']} has no mask; expected a path in column mask")
        masks = (root / row["mask"],) if anomalous else ()
        for path in (root / row["image"], *masks):
            if not path.is_file():
                raise DataError(f"{path}: file listed in {table} not found")
        samples.append(Sample(root / row["image"], int(anomalous), "anomaly" if anomalous else "good", masks))
    return samples, True


_LOADERS = {"mvtec_ad": _mvtec, "mvtec_loco": _loco, "btad": _btad, "mpdd": _mvtec,
            "visa": _visa, "synthetic": _loco, "folder": _folder}


def stack_images(data, batch_size: int = 32, num_workers: int = 0) -> torch.Tensor:
    """All images of `data` as one N x 3 x S x S tensor.

    `data` is a tensor of images, or a dataset whose items are image tensors or
    dicts with an 'image' (as :func:`load` gives).
    """
    if isinstance(data, torch.Tensor):
        return data
    if not isinstance(data, (Dataset, list, tuple)):
        raise TypeError(f"expected an image tensor or a dataset of images, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("the image set is empty")
    batches = [b["image"] if isinstance(b, dict) else b
               for b in DataLoader(data, batch_size=batch_size, num_workers=num_workers)]
    return torch.cat(batches)
