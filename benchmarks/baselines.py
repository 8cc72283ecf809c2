"""The anomalib baselines in any profile, on ULSAD's backbone, image size and data.

    python benchmarks/baselines.py --profile cpu-full --root data/synthetic-cpu-full \
        --coreset-ratio 0.01 --seeds 0 1 2 --csv results/synthetic-cpu-full/baselines/baselines.csv

Chapter 11 compares ULSAD with the baselines in the book's own profile. This
script makes the same rows (``ulsad.book.baseline_experiments.results``: same
backbone tensors, image size, maps and metrics as ULSAD's runs) for another
profile, such as ``cpu-full``'s 256 px, whose ULSAD runs ``python -m ulsad
reproduce`` makes. Each row is written as soon as it is made and rows already in
the CSV with the same setting are reused, so an interrupted run resumes.

At 256 px PatchCore's greedy coreset selection is the cost: its time grows with
the number of training patches times the number it keeps, 64 times the
``demo`` profile's at 10 % (four times the patches per image, twice the
images, and a bank eight times as large). ``--coreset-ratio 0.01``, the PatchCore
paper's headline setting, keeps that within minutes per category on two CPU
cores; the ratio is recorded in every row and is part of what a row is reused for.
The trained baselines (STFPM, Reverse Distillation, FastFlow, CFLOW, and DRAEM
when asked for) train for ``ulsad.baselines.EPOCHS`` epochs unless ``--epochs
stfpm=100 ...`` says otherwise; their epochs are part of the setting too.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ulsad import data
from ulsad.baselines import AVAILABLE, BASELINES, CORESET_RATIO, EPOCHS, anomalib_version
from ulsad.book import baseline_experiments as experiments
from ulsad.config import PROFILES, get_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True, choices=sorted(PROFILES))
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--root", required=True, type=Path, help="the dataset's root folder")
    parser.add_argument("--categories", nargs="+", help="default: every category under --root")
    parser.add_argument("--methods", nargs="+", default=list(BASELINES), choices=AVAILABLE,
                        help=f"default: {' '.join(BASELINES)}")
    parser.add_argument("--epochs", nargs="+", default=[], metavar="METHOD=N",
                        help="a trained baseline's epochs (default: " + ", ".join(f"{k}={v}" for k, v in EPOCHS.items()) + ")")
    parser.add_argument("--coreset-ratio", type=float, default=CORESET_RATIO,
                        help=f"PatchCore's share of training patches kept (default {CORESET_RATIO}, anomalib's)")
    parser.add_argument("--seeds", nargs="+", type=int,
                        help="seeds of PatchCore's coreset projection and PaDiM's channels (default: the profile's)")
    parser.add_argument("--csv", required=True, type=Path)
    args = parser.parse_args(argv)

    if anomalib_version() is None:
        parser.error("the baselines need anomalib: pip install anomalib")
    if not 0 < args.coreset_ratio <= 1:
        parser.error(f"--coreset-ratio must be in (0, 1], got {args.coreset_ratio}")
    if args.seeds and min(args.seeds) < 0:
        parser.error(f"--seeds must be non-negative integers, got {args.seeds}")
    epochs = {}
    for item in args.epochs:
        name, _, value = item.partition("=")
        if name not in EPOCHS or not value.isdigit() or int(value) < 1:
            parser.error(f"--epochs {item}: expected METHOD=N with METHOD one of {', '.join(EPOCHS)} and N >= 1")
        epochs[name] = int(value)
    if not args.root.is_dir():
        parser.error(f"--root {args.root} is not a folder")
    categories = args.categories or data.categories(args.dataset, args.root)
    missing = [c for c in categories if not (args.root / c / "train").is_dir()]
    if missing:  # checked before the first fit, not when the loop reaches them
        parser.error(f"--categories: no {', '.join(c + '/train' for c in missing)} under {args.root}")
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    if args.csv.exists() and not args.csv.is_file():
        parser.error(f"--csv {args.csv} exists and is not a file")

    config = get_config(args.profile)

    def load(split, category):
        return data.load(args.dataset, args.root, category, split, image_size=config.image_size,
                         val_fraction=config.val_fraction, seed=config.seed)

    table = pd.concat([experiments.results(config.replace(seed=seed), load, args.csv, profile=args.profile,
                                           dataset=args.dataset, categories=categories, names=args.methods,
                                           coreset_ratio=args.coreset_ratio, epochs=epochs)
                       for seed in args.seeds or [config.seed]], ignore_index=True)
    columns = ["method", "category", "seed", "image_auroc", "pixel_auroc", "aupro", "logical.image_auroc",
               "structural.image_auroc", "epochs", "fit_s"]
    table = table.loc[table["method"].isin(args.methods)]
    print(table[columns].round(3).to_string(index=False))
    print(f"\nmean over {len(categories)} categories per seed, then mean ± std over seeds, percent:")
    print(summarize(table).to_string())
    return 0


SUMMARY = {"logical.image_auroc": "logical image AUROC", "structural.image_auroc": "structural image AUROC",
           "image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "aupro": "AUPRO"}


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: each seed's mean over the categories, then "mean ± std" over the seeds, in percent."""
    per_seed = 100 * table.groupby(["method", "seed"], sort=False)[list(SUMMARY)].mean()
    mean, std = per_seed.groupby("method", sort=False).mean(), per_seed.groupby("method", sort=False).std()
    cells = {title: [f"{m:.1f} ± {s:.1f}" if pd.notna(s) else f"{m:.1f}" for m, s in zip(mean[c], std[c])]
             for c, title in SUMMARY.items()}
    return pd.DataFrame(cells, index=mean.index)


if __name__ == "__main__":
    sys.exit(main())
