"""How much training does ULSAD need? Learning curves on the synthetic benchmark.

For each category and setting (image size, c*), one `fit` of up to `--epochs`
epochs; every `--every` epochs the detector is calibrated on the validation split
and evaluated on the test split (image AUROC, pixel AUROC, AUPRO, per map and
anomaly type), beside the three loss terms of that epoch and the wall time so far.
One CSV row per (category, setting, epoch); the runs are resumed from the CSV, so
an interrupted study goes on where it stopped.

    python benchmarks/training_budget.py --categories pegboard cable_pair \
        --settings 128:96 128:152 --epochs 200 --every 10 --csv results/synthetic-demo/training-budget/curves.csv

Everything else is the `demo` profile (ImageNet EfficientNet-Lite0, its blur).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from ulsad import data, fit, get_config
from ulsad.config import SYNTHETIC_SIZES
from ulsad.evaluate import evaluate

KEEP = ("image_auroc", "pixel_auroc", "aupro", "logical.image_auroc", "structural.image_auroc",
        "local.image_auroc", "global.image_auroc", "local.pixel_auroc", "global.pixel_auroc")


def learning_curve(category: str, root: Path, image_size: int, c_star: int, epochs: int, every: int) -> list[dict]:
    """One fit, evaluated every `every` epochs: one row per evaluation."""
    cfg = get_config("demo", image_size=image_size, c_star=c_star, epochs=epochs)
    load = lambda split: data.load("synthetic", root, category, split, image_size=image_size)  # noqa: E731
    train, validation, test = load("train"), load("validation"), load("test")
    start, rows = time.perf_counter(), []

    def look(epoch, detector):
        if epoch % every and epoch != epochs:
            return None
        detector.calibrate(data.stack_images(validation))
        result = evaluate(detector, test)
        rows.append({"category": category, "image_size": image_size, "c_star": c_star, "epoch": epoch,
                     "wall_s": time.perf_counter() - start, "weights": detector.weights_source,
                     **{k: result[k] for k in KEEP}})
        return None

    _, history = fit(train, validation, cfg, progress=False, on_epoch=look)
    losses = {h["epoch"]: h for h in history}
    for row in rows:
        row.update({k: losses[row["epoch"]][k] for k in ("L_pl", "L_pg", "L_lg", "total")})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--categories", nargs="+", default=["pegboard", "cable_pair"])
    p.add_argument("--settings", nargs="+", default=["128:96", "128:152"], help="IMAGE_SIZE:C_STAR pairs")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--data", type=Path, default=Path("data/training-budget"))
    p.add_argument("--csv", type=Path, required=True)
    args = p.parse_args()
    settings = [tuple(int(v) for v in s.split(":")) for s in args.settings]
    args.csv.parent.mkdir(parents=True, exist_ok=True)  # before hours of training, not after
    done = pd.read_csv(args.csv) if args.csv.is_file() else pd.DataFrame()
    n_train, n_val, n_test = SYNTHETIC_SIZES["demo"]
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    for size in sorted({s for s, _ in settings}):
        root = data.synth.generate(args.data / f"{size}px", args.categories, seed=0, image_size=size,
                                   n_train=n_train, n_val=n_val, n_test=n_test)
        for category in args.categories:
            for c_star in [c for s, c in settings if s == size]:
                if len(done) and ((done["category"] == category) & (done["image_size"] == size)
                                  & (done["c_star"] == c_star)).any():
                    continue
                rows = learning_curve(category, root, size, c_star, args.epochs, args.every)
                done = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
                done.to_csv(args.csv, index=False)
                last = rows[-1]
                print(json.dumps({k: last[k] for k in ("category", "image_size", "c_star", "epoch", "wall_s",
                                                        "image_auroc", "pixel_auroc", "aupro")}), flush=True)


if __name__ == "__main__":
    main()
