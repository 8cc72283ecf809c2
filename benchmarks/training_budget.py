"""How much training does ULSAD need? Learning curves on the synthetic benchmark.

For each category and setting (image size, c*), one `fit` of up to `--epochs`
epochs; every `--every` epochs the detector is calibrated on the validation split
and evaluated on the test split (image AUROC, pixel AUROC, AUPRO, per map and
anomaly type), beside the three loss terms of that epoch and the wall time so far.
One CSV row per (category, setting, epoch), with the generator version of the
images and the commit of the code; the runs are resumed from the CSV, so an
interrupted study goes on where it stopped. Rows made on images of another
generator version move to ``<csv>-superseded.csv`` and are run again.

    python benchmarks/training_budget.py --categories pegboard cable_pair \
        --settings 128:96 128:152 --epochs 200 --every 10 --csv results/synthetic-demo/training-budget/curves.csv

Everything else is the `demo` profile (ImageNet EfficientNet-Lite0, its blur), with
the Config fields given by ``--set NAME=VALUE``; each row records ``frn_final_relu``.
``--levels`` adds the raw global map's mean on the training images, on the normal
test images and on the logical anomalies inside and outside their masks
(``ulsad.book.learning_curves.global_map_levels``).
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import pandas as pd
import torch

from ulsad import data, get_config
from ulsad.book.learning_curves import learning_curve
from ulsad.config import SYNTHETIC_SIZES, parse_overrides
from ulsad.reproduce import source_commit

DATA_VERSION = f"synthetic-v{data.synth.GENERATOR_VERSION}"


def curve(category: str, root: Path, image_size: int, c_star: int, epochs: int, every: int,
          overrides: dict | None = None, levels: bool = False) -> list[dict]:
    """One fit of the `demo` profile at this size and c* (and `overrides`), evaluated every `every` epochs."""
    cfg = get_config("demo", image_size=image_size, c_star=c_star, epochs=epochs, **(overrides or {}))
    load = lambda split: data.load("synthetic", root, category, split, image_size=image_size)  # noqa: E731
    return learning_curve(cfg, load("train"), load("validation"), load("test"), every,
                          label={"category": category, "image_size": image_size, "c_star": c_star,
                                 "frn_final_relu": cfg.frn_final_relu, "data_version": DATA_VERSION,
                                 "commit": source_commit()}, levels=levels)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--categories", nargs="+", default=["pegboard", "cable_pair"])
    p.add_argument("--settings", nargs="+", default=["128:96", "128:152"], help="IMAGE_SIZE:C_STAR pairs")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--data", type=Path, default=Path("data/training-budget"))
    p.add_argument("--n-test", type=int, default=SYNTHETIC_SIZES["demo"][2],
                   help="test images per category, a third of them of each type (default: the demo profile's)")
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a Config field for every fit, e.g. frn_final_relu=true (the authors' final ReLU)")
    p.add_argument("--levels", action="store_true",
                   help="also record the raw global map's mean on training, normal and logical test images")
    args = p.parse_args()
    if args.n_test < 3:
        p.error(f"--n-test {args.n_test}: expected at least 3 (a third of them of each type)")
    try:
        overrides = parse_overrides(args.set)
        get_config("demo", **overrides)
    except ValueError as e:
        p.error(str(e))
    settings = [tuple(int(v) for v in s.split(":")) for s in args.settings]
    args.csv.parent.mkdir(parents=True, exist_ok=True)  # before hours of training, not after
    done = pd.read_csv(args.csv) if args.csv.is_file() else pd.DataFrame()
    if len(done):
        current = done["data_version"] == DATA_VERSION if "data_version" in done else pd.Series(False, done.index)
        if not current.all():
            aside = args.csv.with_name(args.csv.stem + "-superseded.csv")
            old = pd.concat([pd.read_csv(aside), done[~current]]) if aside.is_file() else done[~current]
            old.to_csv(aside, index=False)
            done = done[current]
            done.to_csv(args.csv, index=False)
            print(f"# {int((~current).sum())} rows made on images of another generator moved to {aside}")
    n_train, n_val, _ = SYNTHETIC_SIZES["demo"]
    n_test = args.n_test
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    for size in sorted({s for s, _ in settings}):
        root = data.synth.generate(args.data / f"{size}px", args.categories, seed=0, image_size=size,
                                   n_train=n_train, n_val=n_val, n_test=n_test)
        for category in args.categories:
            for c_star in [c for s, c in settings if s == size]:
                if len(done) and ((done["category"] == category) & (done["image_size"] == size)
                                  & (done["c_star"] == c_star)).any():
                    continue
                rows = curve(category, root, size, c_star, args.epochs, args.every, overrides, args.levels)
                done = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
                done.to_csv(args.csv, index=False)
                last = rows[-1]
                print(json.dumps({k: last[k] for k in ("category", "image_size", "c_star", "epoch", "wall_s",
                                                        "image_auroc", "pixel_auroc", "aupro")}), flush=True)


if __name__ == "__main__":
    main()
