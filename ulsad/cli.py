"""Command line: ``python -m ulsad {train,predict,...} --help``."""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .backbone import describe_weights
from .config import PROFILES, VARIANTS, default_profile, get_config, parse_overrides


def integer(minimum: int, maximum: int | None = None):
    """An argparse type for a count or seed: 0 or -1 would otherwise fail deep inside, or do nothing and exit 0."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"expected an integer {bound}, got {text}")
        return value

    return parse


def check_output(option: str, path: Path, kind: str) -> None:
    """Refuse an output location the command could not write, before the work whose result would be lost.

    kind "file": a file to write (or replace), whose folder exists or can be made;
    "folder": a folder to write files in, which exists or can be made. The first
    part of the path that exists decides: it must be a folder this user can write in.
    """
    if kind == "file" and path.is_dir():
        raise ValueError(f"{option} {path} is a folder; expected the path of the file to write, "
                         f"e.g. {path / 'detector.ckpt'}")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file; expected a folder (made if missing)")
    folder = path if kind == "folder" else path.parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is a file, so no folder can be made there")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: cannot write in {existing} (no permission or a read-only file system)")


def check_outside(option: str, path: Path, root_option: str, root: Path) -> None:
    """Refuse an output inside a dataset's folder, where it could replace one of its images."""
    if path.resolve().is_relative_to(Path(root).resolve()):
        raise ValueError(f"{option} {path} lies inside the dataset folder {root_option} {root}; "
                         f"expected a path outside it, where nothing of the dataset can be replaced")


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=list(PROFILES), default=None,
                   help="settings profile (default: $ULSAD_PROFILE, else gpu with CUDA, demo without)")
    p.add_argument("--variant", choices=list(VARIANTS), default=None, metavar="VARIANT",
                   help="an ablation of Table 3/21 or Fig. 8 (default: full ULSAD): "
                        + ", ".join(VARIANTS))
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=None, help="random seed (default: the profile's, 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override any Config field, e.g. --set epochs=10 --set lambda_l=0; repeatable")


def _config(args):
    overrides = parse_overrides(args.overrides)
    if args.seed is not None:
        if overrides.get("seed", args.seed) != args.seed:
            raise ValueError(f"--seed {args.seed} and --set seed={overrides['seed']} disagree; give the seed once")
        overrides["seed"] = args.seed
    return get_config(args.profile, args.variant, **overrides)


def cmd_train(args) -> None:
    from . import data
    from .train import fit

    cfg = _config(args)
    check_outside("--out", args.out, "--root", args.root)
    load = lambda split: data.load(args.dataset, args.root, args.category, split,  # noqa: E731
                                   image_size=cfg.image_size, val_fraction=cfg.val_fraction,
                                   seed=cfg.seed)
    train, validation = load("train"), load("validation")
    print(f"training ULSAD on {args.dataset}/{args.category}: {len(train)} train, "
          f"{len(validation)} validation images; profile {args.profile or default_profile()}, "
          f"{cfg.backbone} at {cfg.image_size} px, {cfg.epochs} epochs")
    try:
        detector, history = fit(train, validation, cfg, progress=not args.no_progress)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"training stopped before it finished; nothing was written to {args.out}") from None
    detector.save(args.out, dataset=args.dataset, category=args.category)
    last = history[-1]
    print(f"final losses: L_pl {last['L_pl']:.4f}, L_pg {last['L_pg']:.4f}, L_lg {last['L_lg']:.4f}; "
          f"backbone weights: {describe_weights(detector.weights_source)}; saved {args.out}")


def read_image(path: Path, size: int) -> torch.Tensor:
    """An image file as a 3 x size x size tensor in [0, 1]."""
    from .data import images

    return images.read_image(path, size)


def overlay(image: torch.Tensor, anomaly_map: torch.Tensor) -> Image.Image:
    """The combined map over the image, on the 0-to-1 colour scale Eq. (9) is designed for."""
    from matplotlib import colormaps

    heat = colormaps["jet"](anomaly_map.clamp(0, 1).numpy())[..., :3]
    blend = 0.5 * image.permute(1, 2, 0).numpy() + 0.5 * heat
    return Image.fromarray((blend * 255).round().astype(np.uint8))


def cmd_predict(args) -> None:
    from .detector import ULSAD

    detector = ULSAD.load(args.checkpoint)
    size = detector.config.image_size
    paths = [Path(p) for p in args.images]
    overlays = [args.out / f"{i:04d}_{path.stem}.png" for i, path in enumerate(paths)]
    inputs = {p.resolve(): p for p in (*paths, args.checkpoint)}
    for output in (*overlays, args.out / "scores.csv"):
        if output.resolve() in inputs:
            raise ValueError(f"--out {args.out}: the output {output} would replace the input "
                             f"{inputs[output.resolve()]}; expected another folder")
    images = torch.stack([read_image(p, size) for p in paths])  # fail before writing anything
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for start in range(0, len(paths), args.batch_size):
        batch = images[start:start + args.batch_size]
        out = detector.predict(batch)
        for i, path in enumerate(paths[start:start + args.batch_size]):
            png = overlays[start + i]
            overlay(batch[i], out["combined"][i]).save(png)
            rows.append({"image": str(path), "score": f"{out['score'][i].item():.6f}", "overlay": png.name})
    # A file name that is not UTF-8 is written back as the bytes it has (surrogateescape), and the
    # table appears whole or not at all.
    scores, part = args.out / "scores.csv", args.out / "scores.csv.part"
    with open(part, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "score", "overlay"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(part, scores)
    print(f"{len(rows)} images scored: {scores}")


def cmd_download(args) -> None:
    from . import data

    path = data.download(args.name, args.root, url=args.url, sha256=args.sha256,
                         allow_unverified=args.allow_unverified, max_size_gib=args.max_size_gib,
                         max_ratio=args.max_ratio)
    print(f"{args.name} is ready in {path}")


def cmd_synth(args) -> None:
    from . import data

    root = data.synth.generate(args.root, args.categories, seed=args.seed, image_size=args.image_size,
                               n_train=args.n_train, n_val=args.n_val, n_test=args.n_test)
    print(f"synthetic benchmark ({', '.join(args.categories or data.SYNTHETIC_CATEGORIES)}) written to {root}")


def cmd_evaluate(args) -> None:
    import json

    from . import data
    from .detector import ULSAD
    from .evaluate import evaluate, find_defects_config, results_table
    from .train import pick_device

    detector = ULSAD.load(args.checkpoint, map_location=pick_device())
    cfg = detector.config
    test = data.load(args.dataset, args.root, args.category, "test", image_size=cfg.image_size,
                     val_fraction=cfg.val_fraction, seed=cfg.seed)
    result = evaluate(detector, test, args.batch_size, find_defects_config(args.root, args.category))
    print(f"{args.dataset}/{args.category}: {result['n_test']} test images ({result['n_anomalous']} anomalous), "
          f"evaluated at {cfg.image_size} x {cfg.image_size} px; backbone weights: "
          f"{describe_weights(detector.weights_source)}")
    print(results_table(result).to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
    if args.json:
        info = {"dataset": args.dataset, "category": args.category, "checkpoint": str(args.checkpoint),
                "weights": detector.weights_source}
        print(json.dumps({**info, **result}))


def cmd_reproduce(args) -> None:
    from .reproduce import reproduce

    check_outside("--out", args.out, "--root", args.root)
    runs = reproduce(args.dataset, args.root, args.categories, args.seeds, args.variants, args.profile,
                     parse_overrides(args.overrides), args.out, args.executor, args.ray_address)
    print(f"{len(runs)} runs in {args.out / 'runs.csv'}; summaries in {args.out}/summary_by_{{category,dataset}}.md")
    print((args.out / "summary_by_dataset.md").read_text(encoding="utf-8"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ulsad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a detector on one category's normal images")
    p.add_argument("--dataset", default="synthetic",
                   help="mvtec_ad, mvtec_loco, btad, mpdd, visa, folder or synthetic")
    p.add_argument("--root", type=Path, required=True, help="the dataset's root folder")
    p.add_argument("--category", required=True, help="category (subfolder) to train on")
    _config_args(p)
    p.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train, output=("out", "file"))

    p = sub.add_parser("predict", help="score images with a trained detector")
    p.add_argument("--checkpoint", type=Path, required=True, help="a file written by train")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for scores.csv and one overlay PNG per image")
    p.add_argument("--batch-size", type=integer(1), default=8)
    p.set_defaults(func=cmd_predict, output=("out", "folder"))

    p = sub.add_parser("evaluate", help="the paper's metrics of a trained detector on a test set")
    p.add_argument("--checkpoint", type=Path, required=True, help="a file written by train")
    p.add_argument("--dataset", default="synthetic",
                   help="mvtec_ad, mvtec_loco, btad, mpdd, visa, folder or synthetic")
    p.add_argument("--root", type=Path, required=True, help="the dataset's root folder")
    p.add_argument("--category", required=True, help="category (subfolder) to evaluate on")
    p.add_argument("--batch-size", type=integer(1), default=None, help="default: the checkpoint's")
    p.add_argument("--json", action="store_true",
                   help="also print the metrics as one JSON object, the last line (keys: ulsad.evaluate)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reproduce", help="train and evaluate every (category, seed, variant); compare with the paper")
    p.add_argument("--dataset", default="synthetic",
                   help="mvtec_ad, mvtec_loco, btad, mpdd, visa, folder or synthetic")
    p.add_argument("--root", type=Path, required=True, help="the dataset's root folder")
    p.add_argument("--categories", nargs="+", default=None, help="default: every category of the dataset")
    p.add_argument("--seeds", type=integer(1), default=1, help="number of seeds, 0 .. N-1 (the paper: 5)")
    p.add_argument("--variant", dest="variants", nargs="+", choices=list(VARIANTS), default=["full"],
                   metavar="VARIANT", help="one or more of: " + ", ".join(VARIANTS) + " (default: full)")
    p.add_argument("--profile", choices=list(PROFILES), default=None,
                   help="settings profile (default: $ULSAD_PROFILE, else gpu with CUDA, demo without)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override any Config field for every run, e.g. --set epochs=10; repeatable")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for runs.csv and the summaries; runs already in runs.csv are skipped")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: one run after another; ray: in parallel on a Ray cluster, one GPU per run")
    p.add_argument("--ray-address", default=None, help="a Ray cluster to join (default: start a local one)")
    p.set_defaults(func=cmd_reproduce, output=("out", "folder"))

    p = sub.add_parser("download", help="download and verify one of the five benchmarks")
    p.add_argument("name", help="mvtec_ad, mvtec_loco, btad, mpdd (manual) or visa")
    p.add_argument("--root", type=Path, required=True, help="folder to put the dataset in")
    p.add_argument("--url", default=None, help="another address for the archive (a mirror)")
    p.add_argument("--sha256", default=None, help="the SHA-256 the archive from --url must have")
    p.add_argument("--allow-unverified", action="store_true",
                   help="extract the archive from --url without --sha256 (it is then not checked)")
    from .data.download import MAX_RATIO, MAX_SIZE_GIB  # the caps' defaults live with the code that applies them

    p.add_argument("--max-size-gib", type=float, default=MAX_SIZE_GIB,
                   help="refuse an archive that expands to more GiB than this (default: %(default)g)")
    p.add_argument("--max-ratio", type=float, default=MAX_RATIO,
                   help="refuse an archive that expands to more than this many times its size (default: %(default)g)")
    p.set_defaults(func=cmd_download)

    from .data.synth import MIN_IMAGE_SIZE

    p = sub.add_parser("synth", help="write the synthetic benchmark (MVTec LOCO layout)")
    p.add_argument("--root", type=Path, required=True, help="folder to write the categories to")
    p.add_argument("--categories", nargs="+", default=None, help="default: all ten (both tiers and the texture)")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)
    p.add_argument("--image-size", type=integer(MIN_IMAGE_SIZE), default=256)
    p.add_argument("--n-train", type=integer(1), default=200)
    p.add_argument("--n-val", type=integer(1), default=50)
    p.add_argument("--n-test", type=integer(3), default=150, help="a third each good, logical, structural")
    p.set_defaults(func=cmd_synth, output=("root", "folder"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; an error is one line and exit status 2, Ctrl-C one line saying what was kept and 130.

    Every command that writes is declared with its `output` (option, kind), checked before it starts.
    (download checks its own --root, and only when there is something to write.)
    """
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "output", None):
            name, kind = args.output
            check_output(f"--{name}", getattr(args, name), kind)
        args.func(args)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"interrupted: {str(e) or 'stopped before the command finished'}", file=sys.stderr)
        return 130
    return 0
