"""The book's experiments with the baselines: Chapter 11's results table and Chapter 12's costs, both cached as CSV.

They drive the anomalib adapter (:mod:`ulsad.baselines`) on the chapter's data,
given explicitly: a configuration, ``load(split, category)`` returning a split
(an :class:`ulsad.data.AnomalyDataset`), and the profile and dataset names that
label each row. A row is reused when the CSV already holds one made with the same
setting (profile, backbone, its weights, image size, anomalib version, seed, the
numbers of training and test images, for PatchCore its coreset ratio, and for the
synthetic benchmark the generator that drew the images). Each row also records the git commit of the code that made it
(:func:`ulsad.reproduce.source_commit`); it is not part of the setting, so a new
commit does not redo every measurement.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import baselines, train
from ..baselines import BASELINES, CORESET_RATIO, anomalib_version, ulsad_backbone
from ..config import Config
from ..data import stack_images
from ..data.synth import GENERATOR_VERSION, render
from ..detector import ULSAD
from ..evaluate import Predictions, compute_metrics, with_scores
from ..reproduce import source_commit


def results(config: Config, load, path, *, profile: str, dataset: str, categories,
            names=BASELINES, coreset_ratio: float = CORESET_RATIO, epochs: dict | None = None,
            curves: bool = False) -> pd.DataFrame:
    """One row per (baseline, category): the metrics of :func:`ulsad.baselines.evaluate` and how the row was made.

    ``config.seed`` seeds everything random in a baseline (PatchCore's coreset, PaDiM's
    choice of channels, a trained baseline's initial weights and batches); call once per
    seed for several. A trained baseline trains for ``epochs[name]`` epochs (default
    ``baselines.EPOCHS``) and is also scored after a quarter and half of them
    (:func:`curve_epochs`): those rows, with their ``epochs``, make its learning curve,
    returned too when ``curves`` is true (only the last otherwise). Rows already in the CSV at ``path`` made with the same
    setting, seed, numbers of training and test images and budget are reused; the others
    are computed (train split to fit, test split to score) and added, each as soon as it
    is made, so an interrupted call resumes where it stopped. Rows of other settings stay
    in the file but are neither reused nor returned.
    """
    path = Path(path)
    budgets = {**baselines.EPOCHS, **(epochs or {})}
    version = anomalib_version()
    source = ulsad_backbone(config)[1]
    everything = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["method", "category"])
    setting = dict(profile=profile, backbone=config.backbone, weights=source, image_size=config.image_size,
                   anomalib=version, data_version=_data_version(dataset), seed=config.seed)
    rows = []
    for category in categories:
        train_set, test_set = load("train", category), load("test", category)
        here = dict(setting, n_train=len(train_set), n_test=len(test_set))
        for name in names:
            budget = budgets.get(name)
            mine = everything[(everything["method"] == name) & (everything["category"] == category)]
            made = mine[_made_with(mine, here) & _same_budget(mine, coreset_ratio, budget)]
            if len(made):
                if curves and budget is not None:
                    for epoch in curve_epochs(budget)[:-1]:
                        earlier = mine[_made_with(mine, here) & _same_budget(mine, coreset_ratio, epoch)]
                        rows.extend(earlier.iloc[-1:].to_dict("records"))
                rows.append(made.iloc[-1].to_dict())
                continue
            model = baselines.build(name, config, coreset_ratio, budget)
            about = {"method": name, "category": category, "data": dataset,
                     "coreset_ratio": coreset_ratio if name == "patchcore" else None, **here}
            made_rows = _fit_and_score(model, stack_images(train_set), test_set, about)
            for row in made_rows:
                everything = _append(path, everything, [row])
            rows.extend(everything.iloc[-len(made_rows) if curves else -1:].to_dict("records"))
    return pd.DataFrame(rows)


def curve_epochs(epochs: int) -> list[int]:
    """The epochs after which a trained baseline is scored: a quarter, half, and all of its budget."""
    return sorted({max(1, epochs // 4), max(1, epochs // 2), epochs})


def _fit_and_score(model, train_images: torch.Tensor, test_set, about: dict) -> list[dict]:
    """Fit ``model`` and score it on ``test_set``: one row, or for a trained baseline one per
    :func:`curve_epochs` (its ``fit_s`` the training time up to then, scoring excluded)."""
    made, scoring = [], {"s": 0.0}

    def row(fit_s: float, peak: int) -> dict:
        start = time.perf_counter()
        result = baselines.evaluate(model, test_set)
        scoring["s"] += time.perf_counter() - start
        return {**about, **result, "fit_s": fit_s, "fit_peak_rss_bytes": peak,
                "stored_bytes": baselines.stored_bytes(model),
                "epochs": None if model.epochs is None else epochs_done["n"], "commit": source_commit()}

    epochs_done = {"n": 0}
    start = time.perf_counter()
    with peak_rss() as rss:
        if model.epochs is None:
            baselines.fit(model, train_images)
        else:
            marks = curve_epochs(model.epochs)

            def on_epoch(epoch, _model):
                if epoch in marks:
                    epochs_done["n"] = epoch
                    made.append(row(time.perf_counter() - start - scoring["s"], rss["bytes"]))

            baselines.fit(model, train_images, on_epoch=on_epoch)
    if model.epochs is None:
        made.append(row(time.perf_counter() - start, rss["bytes"]))
    return made


def _append(path: Path, table: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """Write ``table`` plus ``rows`` to ``path`` in one step (a whole file or the old one, never half of
    one) and return it as a later call will read it back (the CSV may read 64 back as 64.0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pd.concat([table, pd.DataFrame(rows)], ignore_index=True).to_csv(partial, index=False)
    os.replace(partial, path)
    return pd.read_csv(path)


def _same_budget(table: pd.DataFrame, coreset_ratio: float, epochs: int | None) -> pd.Series:
    """Rows made with this budget: PatchCore's coreset ratio, a trained baseline's epochs (PaDiM has neither)."""
    keep = pd.Series(True, index=table.index)
    if "coreset_ratio" in table:
        ratio = table["coreset_ratio"].astype(float)
        keep &= (table["method"] != "patchcore") | np.isclose(ratio, coreset_ratio)
    else:
        keep &= table["method"] != "patchcore"
    if epochs is not None:
        keep &= table["epochs"].astype(float) == epochs if "epochs" in table else False
    return keep


def example_maps(config: Config, load, category: str, detector: ULSAD, per_type: int = 3,
                 names=BASELINES, coreset_ratio: float = CORESET_RATIO, epochs: dict | None = None,
                 cache=None) -> dict:
    """ULSAD's combined map and each baseline's map on the first ``per_type`` logical and the first
    ``per_type`` structural test images of ``category`` (taken in order, not chosen), and how each
    method ranks them. A trained baseline trains for ``epochs[name]`` epochs (default ``baselines.EPOCHS``).

    Every method is scored as the results table scores it: the image score is the map's maximum
    (Eq. 10). ``outscored`` is the share of the category's normal test images whose score is below
    the image's: 1 means the method ranks it above every normal image, about 0.5 that it cannot
    tell it from them. Returns {"images": N x 3 x S x S, "masks": N x S x S, "types": N names,
    "maps": {method: N x S x S}, "outscored": {method: N values}}.

    With ``cache`` (an ``.npz`` path), the baselines' maps and scores are kept there with the setting
    that made them (configuration, baselines and their budgets, anomalib's version, the backbone's
    weights and a SHA-256 of the training and test images) and read back while that setting holds;
    ULSAD's maps come from ``detector`` every time.
    """
    epochs = epochs or {}
    test = load("test", category)
    images = stack_images(test)
    types = np.asarray(test.types)
    chosen = np.concatenate([np.flatnonzero(types == kind)[:per_type] for kind in ("logical", "structural")])
    ulsad_maps = torch.cat([detector.predict(batch)["combined"] for batch in images.split(config.batch_size)])
    ulsad_maps = ulsad_maps.reshape(len(images), *images.shape[-2:]).numpy()
    maps = {"ulsad": ulsad_maps[chosen]}
    scores = {"ulsad": ulsad_maps.reshape(len(images), -1).max(1)}
    train_images = stack_images(load("train", category))
    setting = json.dumps({"config": config.to_dict(), "names": list(names), "coreset_ratio": coreset_ratio,
                          "epochs": {n: epochs.get(n) for n in names}, "anomalib": anomalib_version(),
                          "weights": ulsad_backbone(config)[1], "chosen": chosen.tolist(),
                          "images": _sha256(train_images, images)}, sort_keys=True)
    kept = _read_maps(cache, setting)
    for name in names:
        if kept is None:
            model = baselines.fit(baselines.build(name, config, coreset_ratio, epochs.get(name)), train_images)
            method_maps = baselines.predict(model, images, config.batch_size)[1]
            maps[name], scores[name] = method_maps[chosen], method_maps.reshape(len(images), -1).max(1)
        else:
            maps[name], scores[name] = kept[f"maps.{name}"], kept[f"scores.{name}"]
    if cache is not None and kept is None:
        _write_maps(cache, setting, {f"{kind}.{name}": table[name] for kind, table in
                                     (("maps", maps), ("scores", scores)) for name in names})
    normal = types == "good"
    outscored = {method: np.array([(s[normal] < s[i]).mean() for i in chosen]) for method, s in scores.items()}
    return {"images": images[chosen], "masks": torch.stack([test[int(i)]["mask"] for i in chosen]),
            "types": list(types[chosen]), "maps": maps, "outscored": outscored}


def _sha256(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _read_maps(path, setting: str) -> dict | None:
    """The arrays kept at ``path`` if they were made with ``setting``, else None."""
    if path is None or not Path(path).is_file():
        return None
    with np.load(path) as kept:
        if str(kept["setting"]) != setting:
            return None
        return {key: kept[key] for key in kept.files}


def _write_maps(path, setting: str, arrays: dict) -> None:
    """Keep ``arrays`` with their ``setting`` at ``path`` in one step (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        np.savez(f, setting=np.array(setting), **arrays)
    os.replace(partial, path)


def efficiency(config: Config, load, path, sizes, *, profile: str, dataset: str, category: str,
               repeats: int = 3, fit_repeats: int = 1, epochs: int = 2, n_query: int = 16,
               threads: int = 1, names=BASELINES) -> pd.DataFrame:
    """Chapter 12's measurements, one row per (method, training-set size), cached as CSV at ``path``.

    For each size, ULSAD and every baseline in ``names`` is fitted on that many rendered
    normal images of the synthetic ``category`` (ULSAD and the trained baselines for
    ``epochs`` epochs only; their time per epoch is recorded) and scores ``n_query`` test images. Scoring times are medians of
    ``repeats`` runs, fitting times of ``fit_repeats`` (wall clock); peak memory is
    the largest increase of the process's resident set during a run
    (:func:`peak_rss`). Everything runs on ``threads`` torch threads: on a shared
    machine, threads waiting for each other at every small operation slow the
    methods unevenly.
    """
    path = Path(path)
    everything = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["method", "n_train"])
    setting = dict(profile=profile, backbone=config.backbone, weights=ulsad_backbone(config)[1],
                   image_size=config.image_size, anomalib=anomalib_version(),
                   data_version=_data_version("synthetic"))  # its images are rendered here
    old = everything[_made_with(everything, setting)]
    done = set(zip(old["method"], old["n_train"]))
    todo = [(m, n) for n in sizes for m in ("ulsad", *names) if (m, n) not in done]
    if not todo:
        return old.reset_index(drop=True)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows = _measure(config, load, category, sizes, todo, repeats, fit_repeats, epochs, n_query,
                        profile=profile, dataset=dataset)
    finally:
        torch.set_num_threads(previous_threads)
    everything = _append(path, everything, rows)
    return everything[_made_with(everything, setting)].reset_index(drop=True)


def _measure(cfg: Config, load, category, sizes, todo, repeats, fit_repeats, epochs, n_query, *,
             profile: str, dataset: str) -> list[dict]:
    """The rows of :func:`efficiency` for the (method, size) pairs in ``todo``."""
    train_all = normal_images(category, max(sizes), cfg.image_size)
    validation = load("validation", category)
    query = stack_images(load("test", category))[:n_query]
    backbone = ulsad_backbone(cfg)
    theta_params = sum(p.numel() for p in ULSAD(cfg.replace(weights="random")).theta.parameters())
    rows = []
    for method, n in todo:
        images = train_all[:n]
        short = cfg.replace(epochs=epochs)
        trained_epochs = None if method in baselines.MEMORY_BASED else epochs
        holder = {}

        def fit_method():
            if method == "ulsad":
                holder["model"], holder["history"] = train.fit(images, validation, short, progress=False)
            else:
                holder["model"] = baselines.fit(baselines.build(method, cfg, CORESET_RATIO, trained_epochs), images)

        fit_times, fit_peak = _timed(fit_method, fit_repeats)
        model = holder["model"]
        if method == "ulsad":
            score = lambda: [model.predict(b) for b in query.split(cfg.batch_size)]  # noqa: E731
            learned = [p for m in (model.frn, model.global_ae) if m is not None for p in m.parameters()]
            trained = sum(p.numel() for p in learned)
            kept = sum(p.numel() * p.element_size() for p in learned)
            epoch_s = float(np.median([h["seconds"] for h in holder["history"]]))
        else:
            score = lambda: baselines.predict(model, query, cfg.batch_size)  # noqa: E731
            learned = [] if method in baselines.MEMORY_BASED else [p for p in model.model.parameters()
                                                                   if p.requires_grad]
            trained, kept = sum(p.numel() for p in learned), baselines.stored_bytes(model)
            epoch_s = getattr(model, "seconds_per_epoch", None)
        predict_times, predict_peak = _timed(score, repeats)
        rows.append({"method": method, "n_train": n, "fit_s": float(np.median(fit_times)),
                     "epochs_fitted": None if trained_epochs is None else epochs, "epoch_s": epoch_s,
                     "predict_ms_per_image": 1000 * float(np.median(predict_times)) / len(query),
                     "fit_peak_rss_bytes": fit_peak, "predict_peak_rss_bytes": predict_peak,
                     "backbone_params": theta_params, "trained_params": trained, "stored_bytes": kept,
                     "repeats": repeats, "fit_repeats": fit_repeats, "category": category, "data": dataset,
                     "weights": backbone[1], "profile": profile, "backbone": cfg.backbone,
                     "image_size": cfg.image_size, "anomalib": anomalib_version(),
                     "data_version": _data_version("synthetic"), "torch_threads": torch.get_num_threads(),
                     "commit": source_commit()})
    return rows


def normal_images(category: str, n: int, image_size: int, seed: int = 1) -> torch.Tensor:
    """``n`` fresh normal images of a synthetic category (N x 3 x S x S in [0, 1]), rendered in memory,
    so a training set can grow beyond the committed split."""
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


def _data_version(dataset: str) -> str:
    """The synthetic generator's version (a chapter's session regenerates older copies), "" for real data."""
    return f"synthetic-v{GENERATOR_VERSION}" if dataset == "synthetic" else ""


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


@torch.no_grad()
def stage_maps(model, images: torch.Tensor, batch_size: int = 16) -> dict[str, np.ndarray]:
    """Reverse Distillation's or STFPM's anomaly map (N x S x S) from each of its stages alone, keyed by
    the stage's role (``layer1`` ...), and from all of them (``all``, the map :func:`ulsad.baselines.predict`
    gives). Each is made by the method's own map generator, given that one stage."""
    inner = model.model.eval()
    roles = dict(zip(_stages_read(model), baselines.METHOD_LAYERS[model.method]))
    maps: dict[str, list] = {}
    for batch in images.split(batch_size):
        x = model.normalize(batch)
        if model.method == "reverse_distillation":
            encoded = inner.encoder(x)
            decoded = dict(zip(encoded, inner.decoder(inner.bottleneck(list(encoded.values())))))
            per_stage = {s: inner.anomaly_map_generator([encoded[s]], [decoded[s]]) for s in encoded}
        elif model.method == "stfpm":
            teacher, student = inner.teacher_model(x), inner.student_model(x)
            per_stage = {s: inner.anomaly_map_generator(teacher_features={s: teacher[s]},
                                                        student_features={s: student[s]}, image_size=x.shape[-2:])
                         for s in teacher}
        else:
            raise ValueError(f"stage maps are for reverse_distillation and stfpm, not {model.method!r}")
        per_stage = {roles[s]: m for s, m in per_stage.items()} | {"all": inner(x).anomaly_map}
        for role, m in per_stage.items():
            maps.setdefault(role, []).append(m.reshape(len(batch), *batch.shape[-2:]).float().numpy())
    return {role: np.concatenate(m) for role, m in maps.items()}


def _stages_read(model) -> list[str]:
    """timm's names of the stages an anomalib model reads, in order."""
    inner = model.model
    extractor = inner.teacher_model if hasattr(inner, "teacher_model") else inner.encoder
    return list(extractor.layers)


def stage_results(config: Config, load, path, *, profile: str, dataset: str, category: str, method: str,
                  epochs: int) -> pd.DataFrame:
    """Train ``method`` (Reverse Distillation or STFPM) on ``category`` for ``epochs`` epochs and score the map
    of each of its stages alone and of all of them, on the test split, with the metrics of the results
    table: one row per stage. Cached at ``path`` like :func:`results` (same setting, same seed, same epochs)."""
    path = Path(path)
    train_set, test_set = load("train", category), load("test", category)
    setting = dict(method=method, category=category, epochs=epochs, profile=profile, backbone=config.backbone,
                   weights=ulsad_backbone(config)[1], image_size=config.image_size, anomalib=anomalib_version(),
                   data_version=_data_version(dataset), seed=config.seed, n_train=len(train_set),
                   n_test=len(test_set))
    everything = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=list(setting))
    cached = everything[_made_with(everything, setting)]
    if len(cached):
        return cached.reset_index(drop=True)
    model = baselines.fit(baselines.build(method, config, epochs=epochs), stack_images(train_set))
    maps = stage_maps(model, stack_images(test_set))
    masks = np.stack([test_set[i]["mask"].numpy() > 0 for i in range(len(test_set))])
    rows = []
    for stage, stage_map in maps.items():
        pred = Predictions(np.asarray(test_set.labels), np.asarray(test_set.types), masks, test_set.has_masks,
                           {"combined": stage_map}, {})
        rows.append({"stage": stage, **compute_metrics(with_scores(pred), which=("combined",)), **setting,
                     "data": dataset, "commit": source_commit()})
    everything = _append(path, everything, rows)
    return everything[_made_with(everything, setting)].reset_index(drop=True)
