"""Generate the synthetic benchmark, time it, check that image statistics cannot solve it, and draw examples.

    python benchmarks/synth_examples.py [--root DIR] [--figure docs/img/synthetic_examples.png]

For each category it prints the generation time (200/50/150 images at 256 px by
default) and the AUROC of a trivial baseline: the distance of an image's mean
colour to the mean colour of the training images. The benchmark is meant to
need more than that, so these numbers should stay near chance (0.5). The
figure shows, per category, a normal image and one logical and one structural
anomaly with its mask outlined.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from ulsad import data  # noqa: E402


def mean_colours(dataset) -> np.ndarray:
    return np.stack([dataset[i]["image"].mean((1, 2)).numpy() for i in range(len(dataset))])


def baseline_aurocs(root: Path, category: str, image_size: int) -> dict[str, float]:
    """AUROC of ||mean colour - training mean colour|| for good vs logical, structural and both."""
    train = data.load("synthetic", root, category, "train", image_size=image_size)
    test = data.load("synthetic", root, category, "test", image_size=image_size)
    scores = np.linalg.norm(mean_colours(test) - mean_colours(train).mean(0), axis=1)
    types, labels = np.array(test.types), np.array(test.labels)
    result = {}
    for kind in ("logical", "structural"):
        keep = (types == "good") | (types == kind)
        result[kind] = roc_auc_score(labels[keep], scores[keep])
    result["all"] = roc_auc_score(labels, scores)
    return result


def draw_examples(root: Path, figure: Path, image_size: int) -> None:
    categories = data.SYNTHETIC_CATEGORIES
    fig, axes = plt.subplots(len(categories), 3, figsize=(6, 2 * len(categories)))
    for row, category in enumerate(categories):
        test = data.load("synthetic", root, category, "test", image_size=image_size)
        for col, kind in enumerate(("good", "logical", "structural")):
            item = test[test.types.index(kind)]
            ax = axes[row, col]
            ax.imshow(item["image"].permute(1, 2, 0).numpy())
            if kind != "good":
                ax.contour(item["mask"].numpy(), levels=[0.5], colors="cyan", linewidths=1.2)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(kind if kind == "good" else f"{kind} (mask outlined)", fontsize=9)
            if col == 0:
                ax.set_ylabel(category, fontsize=9)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=72)
    print(f"figure: {figure} ({figure.stat().st_size // 1024} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="where to write the benchmark (default: a temporary folder)")
    parser.add_argument("--figure", type=Path, default=Path("docs/img/synthetic_examples.png"))
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root or Path(scratch)
        print("| category | generation (s) | AUROC logical | AUROC structural | AUROC all |")
        print("|---|---|---|---|---|")
        for category in data.SYNTHETIC_CATEGORIES:
            start = time.perf_counter()
            data.synth.generate(root, [category], seed=args.seed, image_size=args.image_size)
            seconds = time.perf_counter() - start
            auroc = baseline_aurocs(root, category, args.image_size)
            print(f"| {category} | {seconds:.1f} | {auroc['logical']:.2f} | {auroc['structural']:.2f} "
                  f"| {auroc['all']:.2f} |", flush=True)
        draw_examples(root, args.figure, args.image_size)


if __name__ == "__main__":
    main()
