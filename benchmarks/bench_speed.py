"""Speed of ULSAD on this machine: training step, inference per image, feature-cache gain, blur.

FLOPs are counted by torch.utils.flop_counter (a multiply-add counts 2) and the
achieved rate is compared with the machine's own rate on one large convolution,
measured in the same run. Times are medians of --reps repetitions.

    python benchmarks/bench_speed.py                 # paper profile, 256 px, batch 8
    python benchmarks/bench_speed.py --json out.json

--fits checks Chapter 12's estimate of a whole training against whole trainings, in one process: for
each repetition and each torch thread count, ULSAD (the profile's ImageNet θ) is fitted on --n-train
rendered normal images of the synthetic category for 2 epochs, which Chapter 12 extrapolates to the
profile's epochs (the 2-epoch fit plus the remaining epochs at its median epoch time), and for all the
profile's epochs, as Chapters 7 and 13 train; --ways patchcore adds PatchCore-10 %'s fit on the same
images. Each fit's wall time, the process's CPU time (all its threads together) and the load average
when it began are added to the CSV, one row per fit, as soon as the fit ends:

    python benchmarks/bench_speed.py --profile demo --fits results/synthetic-demo/efficiency/fit_check.csv --n-train 100 --repeats 1
    python benchmarks/bench_speed.py --profile demo --fits results/synthetic-demo/efficiency/fit_check.csv --n-train 200 --repeats 1 --threads 1 --ways estimate whole patchcore
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from torchvision.transforms.functional import gaussian_blur

from ulsad import ULSAD, get_config, losses, maps, pick_device
from ulsad.estimate import median_seconds


def flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def reference_conv(device, reps):
    """The machine's rate on one large 3x3 convolution (the bulk of ψ's work)."""
    x = torch.randn(8, 512, 32, 32, device=device)
    w = torch.randn(512, 512, 3, 3, device=device)
    fn = lambda: F.conv2d(x, w, padding=1)  # noqa: E731
    return flops(fn) / median_seconds(fn, device, reps, warmup=1)


def fit_check(profile: str, path: str, n_train: int, repeats: int, threads: tuple[int, ...],
              category: str = "lunch_box", ways: tuple[str, ...] = ("estimate", "whole")) -> None:
    """Chapter 12's estimate of a whole training against whole trainings (and, with "patchcore" in ``ways``,
    PatchCore-10 %'s fit on the same images): rows written to ``path``."""
    from ulsad import baselines, train
    from ulsad.book.baseline_experiments import normal_images
    from ulsad.book.session import setup

    session = setup(category, profile=profile, quiet=True)
    cfg = session.config
    images = normal_images(category, n_train, cfg.image_size)  # Chapter 12's images
    validation = session.load("validation")
    rows = []  # the rows already in ``path`` are kept, and this run's added after them
    if Path(path).is_file():
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    for repeat in range(repeats):
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            plan = {"estimate": (2, "chapter 12: 2 epochs, extrapolated"), "whole": (cfg.epochs, "whole training"),
                    "patchcore": (None, f"PatchCore-{baselines.CORESET_RATIO:.0%} fit")}
            for epochs, how in (plan[way] for way in ways):
                load = os.getloadavg()[0]
                wall, cpu = time.perf_counter(), time.process_time()
                if epochs is None:
                    baselines.fit(baselines.build("patchcore", cfg, baselines.CORESET_RATIO), images)
                    history = [{"seconds": float("nan")}]
                else:
                    _, history = train.fit(images, validation, cfg.replace(epochs=epochs), progress=False)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                epoch_s = statistics.median(h["seconds"] for h in history)
                earlier = sum(1 for r in rows if (r["how"], int(r["torch_threads"]), int(r["n_train"]))
                              == (how, n_threads, n_train))  # repeats are numbered on from the CSV's
                row = {"how": how, "repeat": earlier, "torch_threads": n_threads, "n_train": n_train,
                       "epochs_fitted": epochs, "fit_s": wall, "cpu_s": cpu, "first_epoch_s": history[0]["seconds"],
                       "median_epoch_s": epoch_s, "outside_epochs_s": wall - sum(h["seconds"] for h in history),
                       "train_s": wall if epochs is None else wall + (cfg.epochs - epochs) * epoch_s,
                       "load_1min": load,
                       "profile": profile, "category": category, "backbone": cfg.backbone,
                       "image_size": cfg.image_size, "epochs": cfg.epochs, "cpus": os.cpu_count(),
                       "torch": torch.__version__}
                print({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
                rows.append(row)
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                with open(path, "w", newline="", encoding="utf-8") as f:  # rewritten after every fit
                    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--fits", default=None, metavar="CSV",
                        help="instead: Chapter 12's training estimate against whole trainings, rows added to CSV")
    parser.add_argument("--n-train", type=int, default=100, help="with --fits: training images")
    parser.add_argument("--repeats", type=int, default=3, help="with --fits: repetitions")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="with --fits: torch threads")
    parser.add_argument("--ways", nargs="+", default=["estimate", "whole"], choices=["estimate", "whole", "patchcore"],
                        help="with --fits: what to time (patchcore: PatchCore-10 %%'s fit on the same images)")
    args = parser.parse_args()
    if args.fits:
        fit_check(args.profile, args.fits, args.n_train, args.repeats, tuple(args.threads), ways=tuple(args.ways))
        return

    device = pick_device()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a random θ is fine for timing
        cfg = get_config(args.profile, weights="random", batch_size=args.batch_size)
        detector = ULSAD(cfg).to(device)
    if detector._channels_last:
        detector = detector.to(memory_format=torch.channels_last)
    s, b = cfg.image_size, args.batch_size
    x = detector.check_images(torch.rand(b, 3, s, s))
    params = [p for m in (detector.frn, detector.global_ae) for p in m.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    detector.train()
    detector.set_feature_statistics(detector.raw_features(x))
    u = detector.features(x)

    def step(u=u):
        terms = losses.terms(detector(x, u), cfg)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()

    def step_without_cache():
        step(detector.features(x))

    def infer():
        m_l, m_g = detector.raw_maps(x)
        return m_l, m_g

    conv_rate = reference_conv(device, args.reps)
    step_flops, step_time = flops(step), median_seconds(step, device, args.reps, warmup=1)
    uncached_time = median_seconds(step_without_cache, device, args.reps, warmup=1)
    detector.eval()
    detector.set_quantiles((0.0, 1.0), (0.0, 1.0))
    predict = lambda: detector.predict(x)  # noqa: E731
    infer_flops, infer_time = flops(predict), median_seconds(predict, device, args.reps, warmup=1)

    # The blur alone: the package's separable form against torchvision's 2-D kernel.
    raw = torch.rand(b, s, s, device=device)
    k, sigma = cfg.blur_kernel, cfg.blur_sigma
    blur_2d = median_seconds(lambda: gaussian_blur(raw.unsqueeze(1), [k, k], [sigma, sigma]), device, args.reps,
                             warmup=1)
    blur_separable = median_seconds(lambda: maps.blur(raw, sigma, k), device, args.reps, warmup=1)

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else device.type,
        "torch": torch.__version__, "profile": args.profile, "image_size": s, "batch_size": b,
        "reference_conv_gflops": conv_rate / 1e9,
        "train_step_s": step_time, "train_step_gflop": step_flops / 1e9,
        "train_gflops": step_flops / step_time / 1e9,
        "train_fraction_of_conv": step_flops / step_time / conv_rate,
        "train_images_per_s": b / step_time,
        "train_step_without_cache_s": uncached_time,
        "epoch_speedup_from_cache": uncached_time / step_time,
        "inference_s_per_image": infer_time / b, "inference_gflop_per_image": infer_flops / b / 1e9,
        "inference_gflops": infer_flops / infer_time / 1e9,
        "inference_fraction_of_conv": infer_flops / infer_time / conv_rate,
        "inference_images_per_s": b / infer_time,
        "blur_2d_ms_per_batch": blur_2d * 1e3, "blur_separable_ms_per_batch": blur_separable * 1e3,
        "blur_speedup": blur_2d / blur_separable,
    }
    width = max(map(len, result))
    for k, v in result.items():
        print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
