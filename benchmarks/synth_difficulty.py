"""How hard is each synthetic category? Image AUROC of detectors that need no training.

    python benchmarks/synth_difficulty.py [--categories pegboard ...] [--image-size 128] [--seed 0] [--csv out.csv]

ULSAD's claim is that a logical anomaly (a missing, extra or misplaced item)
leaves every patch of the image normal: a patch memory such as PatchCore should
then miss it, while a model of the whole image can catch it. A benchmark can
only show what ULSAD's global branch is for if its logical anomalies behave like
that. For each category this script generates the training and validation images of
the ``demo`` profile (``ulsad.config.SYNTHETIC_SIZES["demo"]``) and 300 test
images (``--n-test``; the demo's 90 would leave one AUROC a standard error of
about 0.07) into a temporary folder, timing it, and reports, for normal test images vs
logical and vs structural anomalies, and vs each logical rule on its own (as many
fresh images of that rule as the test set has logical anomalies), the image AUROC of

- **mean colour**: the distance of an image's mean RGB to the mean of the
  training images' mean RGB (the baseline of ``benchmarks/synth_examples.py``);
- **patch memory** (PatchCore without coreset): every stride-8 patch feature of
  the training images in a bank; an image scores the largest distance of one of
  its patches to its nearest bank patch;
- **patch memory 3x3**: the same, after averaging each feature with its 3 x 3
  neighbours, as anomalib's PatchCore does (each patch then sees a wider
  neighbourhood);
- **whole image**: the globally average-pooled features of an image; it scores
  the distance to the nearest training image's descriptor;
- **layout 2x2, layout 4x4**: the features average-pooled to a 2 x 2 or 4 x 4
  grid of cells and concatenated, so that the descriptor keeps where things
  are; an image scores the distance to the nearest training image's. It is the
  simplest model of the whole image that can learn a layout rule from the
  training images, when the valid layouts are few and each is seen often;
- **layout 4x4 worst cell**: the same nearest training image (by the whole 4 x 4
  layout), but an image scores the largest distance of one of its cells to the
  same cell of that neighbour, so that a rule broken in one part is not
  drowned in the normal variation of the fifteen other cells.

Features are θ's without channel reduction: ImageNet EfficientNet-Lite0's
stride-8 and stride-16 stages, the latter resized to the former and
concatenated (152 channels at S/8), as ``ulsad.backbone.FeatureExtractor`` does.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ulsad import data
from ulsad.backbone import FeatureExtractor
from ulsad.config import SYNTHETIC_SIZES
from ulsad.metrics import image_auroc
from ulsad.reproduce import source_commit

BACKBONE, LAYERS, CHANNELS = "efficientnet_lite0", ("layer2", "layer3"), 152  # 40 + 112: no reduction
TYPES = ("logical", "structural")
DETECTORS = ("mean colour", "patch memory", "patch memory 3x3", "whole image", "layout 2x2", "layout 4x4",
             "layout 4x4 worst cell")
LAYOUT_GRIDS = (2, 4)
RULE_SEED = 99  # per-rule test images are drawn with seeds [seed, 99, rule, index], apart from generate's
COLUMNS = ("category", "type", *DETECTORS, "generation s")
PROVENANCE = ("seed", "image_size", "n_train", "n_test", "features", "commit")  # CSV only


def feature_extractor() -> FeatureExtractor:
    """θ with ImageNet weights and all 152 channels (c* = the channels of the two stages: reduction is a no-op)."""
    return FeatureExtractor(BACKBONE, LAYERS, c_star=CHANNELS)


@torch.no_grad()
def features(extractor, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """N x 3 x S x S images in [0, 1] -> N x C x S/8 x S/8 features."""
    return torch.cat([extractor(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def mean_colour_scores(train: torch.Tensor, test: torch.Tensor) -> np.ndarray:
    """Distance of each test image's mean RGB to the mean of the training images' mean RGB."""
    centre = train.mean((2, 3)).mean(0)
    return torch.linalg.vector_norm(test.mean((2, 3)) - centre, dim=1).numpy()


def nearest_indices(queries: torch.Tensor, bank: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """The row of `bank` (M x d) nearest to each row of `queries` (Q x d), found by torch.cdist in chunks."""
    return torch.cat([torch.cdist(q, bank).argmin(1) for q in queries.split(chunk)])


def nearest_distances(queries: torch.Tensor, bank: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Euclidean distance of each row of `queries` (Q x d) to its nearest row of `bank` (M x d).

    The neighbour is found with torch.cdist's fast matrix-product form; the
    distance to it is then computed directly, so that a query found in the
    bank scores exactly 0.
    """
    return torch.linalg.vector_norm(queries - bank[nearest_indices(queries, bank, chunk)], dim=1)


def patch_memory_scores(train_features: torch.Tensor, test_features: torch.Tensor) -> np.ndarray:
    """Max over an image's patches of the distance to the nearest patch of the full training bank."""
    def patches(f):  # N x C x h x w -> N*h*w x C
        return f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
    n, _, h, w = test_features.shape
    distances = nearest_distances(patches(test_features), patches(train_features))
    return distances.reshape(n, h * w).amax(1).numpy()


def neighbourhoods(f: torch.Tensor) -> torch.Tensor:
    """Each feature averaged with its 3 x 3 neighbours (PatchCore's local aggregation; borders padded)."""
    return torch.nn.functional.avg_pool2d(f, 3, stride=1, padding=1, count_include_pad=False)


def whole_image_scores(train_features: torch.Tensor, test_features: torch.Tensor) -> np.ndarray:
    """Distance of an image's average-pooled features to the nearest training image's."""
    return nearest_distances(test_features.mean((2, 3)), train_features.mean((2, 3))).numpy()


def layout_scores(train_features: torch.Tensor, test_features: torch.Tensor, grid: int) -> np.ndarray:
    """Distance of an image's features pooled to ``grid`` x ``grid`` cells (the layout kept) to the nearest
    training image's: a whole-image reference that knows where things are."""
    def layout(f):
        return torch.nn.functional.adaptive_avg_pool2d(f, grid).flatten(1)
    return nearest_distances(layout(test_features), layout(train_features)).numpy()


def worst_cell_scores(train_features: torch.Tensor, test_features: torch.Tensor, grid: int = 4) -> np.ndarray:
    """The nearest training image by the whole layout (as ``layout_scores``), then the largest distance
    between one cell of the image and the same cell of that neighbour.

    A rule broken in one part changes one cell: the plain layout distance adds
    that change to the normal variation of every other cell; this keeps it apart.
    """
    train_cells = torch.nn.functional.adaptive_avg_pool2d(train_features, grid)
    test_cells = torch.nn.functional.adaptive_avg_pool2d(test_features, grid)
    nearest = nearest_indices(test_cells.flatten(1), train_cells.flatten(1))
    return torch.linalg.vector_norm(test_cells - train_cells[nearest], dim=1).flatten(1).amax(1).numpy()


def detector_scores(train: torch.Tensor, train_f: torch.Tensor, test: torch.Tensor, test_f: torch.Tensor) -> dict:
    """Every detector's image scores of the test images (higher: more anomalous)."""
    return {"mean colour": mean_colour_scores(train, test),
            "patch memory": patch_memory_scores(train_f, test_f),
            "patch memory 3x3": patch_memory_scores(neighbourhoods(train_f), neighbourhoods(test_f)),
            "whole image": whole_image_scores(train_f, test_f),
            **{f"layout {g}x{g}": layout_scores(train_f, test_f, g) for g in LAYOUT_GRIDS},
            "layout 4x4 worst cell": worst_cell_scores(train_f, test_f)}


def rule_images(category: str, rule: str, k: int, n: int, image_size: int, seed: int) -> torch.Tensor:
    """``n`` logical anomalies that break one ``rule`` (the k-th of the category), N x 3 x S x S in [0, 1]."""
    images = [data.synth.render(category, "logical", np.random.default_rng([seed, RULE_SEED, k, i]), image_size,
                                rule=rule)[0] for i in range(n)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def category_rows(root: Path, category: str, extractor, image_size: int, seconds: float, seed: int) -> list[dict]:
    """One row per anomaly type, then one per logical rule: the detectors' image AUROC, normal test
    images vs that type (the generated test set) or that rule (as many fresh images as a type has)."""
    train = data.stack_images(data.load("synthetic", root, category, "train", image_size=image_size))
    test_set = data.load("synthetic", root, category, "test", image_size=image_size)
    test = data.stack_images(test_set)
    train_f, test_f = features(extractor, train), features(extractor, test)
    scores = detector_scores(train, train_f, test, test_f)
    types, labels = np.array(test_set.types), np.array(test_set.labels)
    rows = []
    for kind in TYPES:
        keep = (types == "good") | (types == kind)
        rows.append({"category": category, "type": kind,
                     **{name: image_auroc(labels[keep], s[keep]) for name, s in scores.items()},
                     "generation s": seconds})
    good = types == "good"
    for k, rule in enumerate(data.synth.RULES[category]):
        broken = rule_images(category, rule, k, int((types == "logical").sum()), image_size, seed)
        rule_scores = detector_scores(train, train_f, broken, features(extractor, broken))
        rule_labels = np.r_[np.zeros(good.sum()), np.ones(len(broken))]
        rows.append({"category": category, "type": f"logical: {rule}",
                     **{name: image_auroc(rule_labels, np.r_[scores[name][good], s])
                        for name, s in rule_scores.items()},
                     "generation s": seconds})
    return rows


def markdown_table(rows: list[dict]) -> str:
    def cell(value):
        return f"{value:.2f}" if isinstance(value, float) else str(value)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", nargs="+", default=list(data.SYNTHETIC_CATEGORIES),
                        choices=data.SYNTHETIC_CATEGORIES)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-test", type=int, default=300,
                        help="test images per category, a third each good, logical, structural (default 300: "
                             "with the demo's 30 per type one AUROC has a standard error of about 0.07)")
    parser.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    if args.csv:  # before the work: a CSV that cannot be written fails now, not after a minute
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        if args.csv.is_dir() or not os.access(args.csv.parent, os.W_OK):
            parser.error(f"--csv {args.csv}: expected a file in a writable folder")
    n_train, n_val, _ = SYNTHETIC_SIZES["demo"]
    n_test = args.n_test
    extractor = feature_extractor()
    start, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as root:
        for category in args.categories:
            begin = time.perf_counter()
            data.synth.generate(root, [category], seed=args.seed, image_size=args.image_size,
                                n_train=n_train, n_val=n_val, n_test=n_test)
            rows += category_rows(Path(root), category, extractor, args.image_size, time.perf_counter() - begin,
                                  args.seed)
            print(f"{category}: done", file=sys.stderr, flush=True)
    print(markdown_table(rows))
    print(f"\ncommand: python {' '.join(sys.argv if argv is None else [sys.argv[0], *argv])}")
    print(f"data: seed {args.seed}, {args.image_size} px, {n_train} / {n_val} / {n_test} images (train / val / test; "
          f"train and val as in the demo profile); features: ImageNet {BACKBONE} {'+'.join(LAYERS)}, {CHANNELS} channels "
          f"({extractor.weights_source})")
    print(f"machine: {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"date {datetime.date.today().isoformat()}; total {time.perf_counter() - start:.0f} s")
    if args.csv:
        provenance = dict(zip(PROVENANCE, (args.seed, args.image_size, n_train, n_test,
                                           f"{BACKBONE} {'+'.join(LAYERS)} {extractor.weights_source}",
                                           source_commit())))
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS + PROVENANCE)
            writer.writeheader()
            writer.writerows({**row, **provenance} for row in rows)
        print(f"csv: {args.csv}")


if __name__ == "__main__":
    main()
