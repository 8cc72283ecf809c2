"""PatchCore and PaDiM from anomalib, run on ULSAD's data, image size and backbone weights (chapters 11-12).

The paper took its baselines from anomalib; so do we, through anomalib's own
models (``anomalib.models.Patchcore`` and ``Padim``): this module only feeds
them. It gives them the images ULSAD's θ sees (S x S, normalised as the backbone
wants, no crop), the same stages and θ's own tensors, so that a comparison differs
in the method alone:

    build(name, config)            the anomalib model, its backbone holding ULSAD's θ
    fit(model, images)             one pass over normal images, then anomalib's fit (coreset, Gaussians)
    predict(model, images)         image scores (N) and anomaly maps (N x S x S), numpy
    evaluate(model, test)          ULSAD's metric keys (ulsad.evaluate) on the predicted maps
    stored_bytes(model)            what the model keeps from its training images
    peak_rss()                     the process's peak resident memory during a block, sampled
    results(session, path)         chapter 11's table: every baseline on every category, cached as CSV
    efficiency(session, sizes, path)
                                   chapter 12's costs (time, memory, what is kept) as the training set grows

Needs the optional ``anomalib`` package (``pip install anomalib``, the
``baselines`` extra).
"""
from __future__ import annotations

import ctypes
import importlib.metadata
import os
import threading
import time
import warnings
import io
from contextlib import contextmanager, redirect_stderr
from pathlib import Path

import numpy as np
import pandas as pd
import timm
import torch

from .backbone import LAYERS, create_body, get_backbone
from .config import Config
from .evaluate import Predictions, with_scores, compute_metrics
from .train import seed_everything, stack_images

BASELINES = ("patchcore", "padim")
PADIM_LAYERS = ("layer1", "layer2", "layer3")  # anomalib's default for PaDiM
# PaDiM keeps a random subset of its channels. anomalib knows the subset's size for two
# networks (100 of resnet18's 448, 550 of wide_resnet50_2's 1792); for the others we keep
# the paper backbone's share, 550 / 1792 (54 of EfficientNet-Lite0's 24 + 40 + 112).
PADIM_FEATURES = {"resnet18": 100, "wide_resnet50_2": 550}
PADIM_SHARE = 550 / 1792
# PatchCore-1%, the headline setting of PatchCore's paper. anomalib's default is 10%, but its
# greedy coreset costs (ratio x N^2): at 10% one demo category takes minutes on two CPU cores.
CORESET_RATIO = 0.01
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _return_large_blocks_to_os() -> None:
    """Serve large allocations from mmap, so that freed ones go back to the system.

    anomalib's coreset loop allocates and frees an N x d tensor per step; under
    glibc's adaptive threshold those blocks came from the heap and were not
    reused, and a demo category grew the process past 20 GB. No-op off glibc.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 8 << 20)
    except (OSError, AttributeError):
        pass


def anomalib_version() -> str | None:
    """The installed anomalib's version, or None when it is missing."""
    try:
        return importlib.metadata.version("anomalib")
    except importlib.metadata.PackageNotFoundError:
        return None


def ulsad_backbone(config: Config) -> tuple[dict, str]:
    """θ's tensors exactly as :func:`ulsad.train.fit` makes them (same seed), and where they came from."""
    seed_everything(config.seed)
    body, source = create_body(config.backbone, config.layers, config.weights, config.allow_random_weights)
    return body.state_dict(), source


def build(name: str, config: Config, coreset_ratio: float = CORESET_RATIO, backbone: tuple | None = None):
    """anomalib's PatchCore (ULSAD's layers) or PaDiM (its own layer1-3) on ULSAD's backbone θ.

    backbone: ``ulsad_backbone(config)``, computed here when not given. The
    model's ``weights_source`` says where θ came from.
    """
    with warnings.catch_warnings():  # anomalib's deprecation notices about modules it does not use here
        warnings.simplefilter("ignore", FutureWarning)
        from anomalib.models import Padim, Patchcore

    state, source = backbone or ulsad_backbone(config)
    spec = get_backbone(config.backbone)
    if name == "patchcore":  # anomalib names the stages as timm does (blocks.2 for EfficientNet's layer2)
        model = Patchcore(backbone=spec.timm_name, layers=[spec.stage(layer) for layer in config.layers],
                          pre_trained=False, coreset_sampling_ratio=coreset_ratio)
    elif name == "padim":
        model = Padim(backbone=spec.timm_name, layers=[spec.stage(layer) for layer in PADIM_LAYERS],
                      pre_trained=False, n_features=padim_features(spec))
    else:
        raise ValueError(f"unknown baseline {name!r}: expected one of {', '.join(BASELINES)}")
    # Both networks end at the stride-16 stage, so θ's tensors fit exactly (strict loading).
    model.model.feature_extractor.feature_extractor.load_state_dict(state)
    model.normalize = spec.normalize
    model.weights_source = source
    return model.eval()


def padim_features(spec) -> int:
    """How many of PaDiM's layer1-3 channels it keeps on this backbone (anomalib's number where it has one)."""
    if spec.name in PADIM_FEATURES:
        return PADIM_FEATURES[spec.name]
    body = timm.create_model(spec.timm_name, pretrained=False, features_only=True,
                             out_indices=[LAYERS.index(layer) for layer in PADIM_LAYERS])
    return round(sum(body.feature_info.channels()) * PADIM_SHARE)


@torch.no_grad()
def fit(model, images: torch.Tensor, batch_size: int = 16):
    """Collect the features of normal images (B x 3 x S x S in [0, 1]), then anomalib's ``fit``:
    PatchCore's coreset subsampling, PaDiM's per-position Gaussians."""
    _return_large_blocks_to_os()
    model.model.train()
    for batch in images.split(batch_size):
        model.model(model.normalize(batch))
    with redirect_stderr(io.StringIO()):  # anomalib's coreset progress bar, unwanted in a chapter
        model.fit()
    return model.eval()


@torch.no_grad()
def predict(model, images: torch.Tensor, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Image scores (N) and anomaly maps (N x S x S, the input's size), as anomalib computes them."""
    model.model.eval()
    scores, maps = [], []
    for batch in images.split(batch_size):
        out = model.model(model.normalize(batch))
        scores.append(out.pred_score.reshape(-1).float().numpy())
        maps.append(out.anomaly_map.reshape(len(batch), *batch.shape[-2:]).float().numpy())
    return np.concatenate(scores), np.concatenate(maps)


def evaluate(model, test, batch_size: int = 16) -> dict:
    """Image AUROC, pixel AUROC and AUPRO of the model's maps on a test split, overall and per anomaly
    type, under the keys of :mod:`ulsad.evaluate` (the same code that scores ULSAD)."""
    _, maps = predict(model, stack_images(test), batch_size)
    masks = np.stack([test[i]["mask"].numpy() > 0 for i in range(len(test))])
    pred = Predictions(np.asarray(test.labels), np.asarray(test.types), masks, test.has_masks,
                       {"combined": maps}, {})
    # Scores as ULSAD takes them (Eq. 10, the map's max), for both methods alike
    return compute_metrics(with_scores(pred), which=("combined",))


def stored_bytes(model) -> int:
    """Bytes of what the model keeps from its training images: PatchCore's memory bank, PaDiM's
    per-position means and inverse covariances. The backbone is not counted."""
    inner = model.model
    if hasattr(inner, "gaussian"):
        kept = [inner.gaussian.mean, inner.gaussian.inv_covariance]
    else:
        kept = [inner.memory_bank]
    return sum(t.numel() * t.element_size() for t in kept)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def peak_rss(every_s: float = 0.005):
    """Yields a dict whose ``"bytes"`` is, after the block, the most resident memory the process held
    above its level at the start (sampled from /proc every ``every_s``; Linux only)."""
    result, done = {"bytes": 0}, threading.Event()
    start = _rss()

    def sample():
        while not done.is_set():
            result["bytes"] = max(result["bytes"], _rss() - start)
            time.sleep(every_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        result["bytes"] = max(result["bytes"], _rss() - start)


def results(session, path, names=BASELINES, categories=None, coreset_ratio: float = CORESET_RATIO) -> pd.DataFrame:
    """One row per (baseline, category): the metrics of :func:`evaluate` and how the row was made.

    Rows already in the CSV at ``path`` made with the same setting (profile, backbone,
    its weights, image size, anomalib version) are reused; the others are computed
    (train split to fit, test split to score) and added. Rows of other settings stay
    in the file but are neither reused nor returned.
    """
    path = Path(path)
    cfg, version = session.config, anomalib_version()
    backbone = ulsad_backbone(cfg)
    everything = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["method", "category"])
    setting = dict(profile=session.profile, backbone=cfg.backbone, weights=backbone[1],
                   image_size=cfg.image_size, anomalib=version)
    old = everything[_made_with(everything, setting)]
    done = set(zip(old["method"], old["category"]))
    rows = []
    for category in categories or session.categories():
        for name in names:
            if (name, category) in done:
                continue
            model = build(name, cfg, coreset_ratio, backbone)
            start = time.perf_counter()
            fit(model, stack_images(session.load("train", category)))
            fit_s = time.perf_counter() - start
            result = evaluate(model, session.load("test", category))
            rows.append({"method": name, "category": category, **result, "fit_s": fit_s,
                         "stored_bytes": stored_bytes(model), "data": session.dataset,
                         "coreset_ratio": coreset_ratio if name == "patchcore" else None, **setting})
    if rows:
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.concat([everything, pd.DataFrame(rows)], ignore_index=True).to_csv(path, index=False)
        everything = pd.read_csv(path)  # as a later call will read it back
    return everything[_made_with(everything, setting)].reset_index(drop=True)


def _made_with(table: pd.DataFrame, setting: dict) -> pd.Series:
    """Which cached rows were made with exactly this setting (compared as text: the CSV may read 64 back as 64.0)."""
    def text(value) -> str:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        return str(int(number)) if number.is_integer() else str(number)

    keep = pd.Series(True, index=table.index)
    for column, value in setting.items():
        keep &= table[column].map(text) == text(value) if column in table else False
    return keep


def normal_images(category: str, n: int, image_size: int, seed: int = 1) -> torch.Tensor:
    """``n`` fresh normal images of a synthetic category (N x 3 x S x S in [0, 1]), rendered in memory,
    so a training set can grow beyond the committed split."""
    from .data.synth import render

    images = [render(category, "good", np.random.default_rng([seed, i]), image_size)[0] for i in range(n)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def _timed(run, repeats: int) -> tuple[list[float], int]:
    """Wall seconds of ``repeats`` calls of ``run()``, and the largest peak RSS increase among them."""
    seconds, peak = [], 0
    for _ in range(repeats):
        with peak_rss() as rss:
            start = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - start)
        peak = max(peak, rss["bytes"])
    return seconds, peak


def efficiency(session, sizes, path, category: str | None = None, repeats: int = 3, fit_repeats: int = 1,
               ulsad_epochs: int = 2, n_query: int = 16, threads: int = 1) -> pd.DataFrame:
    """Chapter 12's measurements, one row per (method, training-set size), cached as CSV at ``path``.

    For each size, every method is fitted on that many rendered normal images
    (ULSAD for ``ulsad_epochs`` epochs only; its time per epoch is recorded) and
    scores ``n_query`` test images. Scoring times are medians of ``repeats`` runs,
    fitting times of ``fit_repeats`` (wall clock); peak memory is the largest
    increase of the process's resident set during a run (:func:`peak_rss`). Everything runs on ``threads`` torch
    threads: on a shared machine, threads waiting for each other at every small
    operation slow the methods unevenly. Rows already at ``path`` made with the same
    setting (profile, backbone, its weights, image size, anomalib version) are reused.
    """
    path = Path(path)
    category = category or session.category
    cfg = session.config
    everything = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["method", "n_train"])
    setting = dict(profile=session.profile, backbone=cfg.backbone, weights=ulsad_backbone(cfg)[1],
                   image_size=cfg.image_size, anomalib=anomalib_version())
    old = everything[_made_with(everything, setting)]
    done = set(zip(old["method"], old["n_train"]))
    todo = [(m, n) for n in sizes for m in ("ulsad", *BASELINES) if (m, n) not in done]
    if not todo:
        return old.reset_index(drop=True)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows = _measure(session, sizes, todo, category, repeats, fit_repeats, ulsad_epochs, n_query)
    finally:
        torch.set_num_threads(previous_threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat([everything, pd.DataFrame(rows)], ignore_index=True).to_csv(path, index=False)
    everything = pd.read_csv(path)
    return everything[_made_with(everything, setting)].reset_index(drop=True)


def _measure(session, sizes, todo, category, repeats, fit_repeats, ulsad_epochs, n_query) -> list[dict]:
    """The rows of :func:`efficiency` for the (method, size) pairs in ``todo``."""
    from .detector import ULSAD
    from .train import fit as fit_ulsad

    cfg = session.config
    train_all = normal_images(category, max(sizes), cfg.image_size)
    validation = session.load("validation", category)
    query = stack_images(session.load("test", category))[:n_query]
    backbone = ulsad_backbone(cfg)
    theta_params = sum(p.numel() for p in ULSAD(cfg.replace(weights="random")).theta.parameters())
    rows = []
    for method, n in todo:
        images = train_all[:n]
        short = cfg.replace(epochs=ulsad_epochs)
        holder = {}

        def train():
            if method == "ulsad":
                holder["model"], holder["history"] = fit_ulsad(images, validation, short, progress=False)
            else:
                holder["model"] = fit(build(method, cfg, CORESET_RATIO, backbone), images)

        fit_times, fit_peak = _timed(train, fit_repeats)
        model = holder["model"]
        if method == "ulsad":
            score = lambda: [model.predict(b) for b in query.split(cfg.batch_size)]  # noqa: E731
            learned = [p for m in (model.frn, model.global_ae) if m is not None for p in m.parameters()]
            trained = sum(p.numel() for p in learned)
            kept = sum(p.numel() * p.element_size() for p in learned)
            epoch_s = float(np.median([h["seconds"] for h in holder["history"]]))
        else:
            score = lambda: predict(model, query, cfg.batch_size)  # noqa: E731
            trained, kept, epoch_s = 0, stored_bytes(model), None
        predict_times, predict_peak = _timed(score, repeats)
        rows.append({"method": method, "n_train": n, "fit_s": float(np.median(fit_times)),
                     "epochs_fitted": ulsad_epochs if method == "ulsad" else None, "epoch_s": epoch_s,
                     "predict_ms_per_image": 1000 * float(np.median(predict_times)) / len(query),
                     "fit_peak_rss_bytes": fit_peak, "predict_peak_rss_bytes": predict_peak,
                     "backbone_params": theta_params, "trained_params": trained, "stored_bytes": kept,
                     "repeats": repeats, "fit_repeats": fit_repeats, "category": category, "data": session.dataset,
                     "weights": backbone[1], "profile": session.profile, "backbone": cfg.backbone,
                     "image_size": cfg.image_size, "anomalib": anomalib_version(),
                     "torch_threads": torch.get_num_threads()})
    return rows
