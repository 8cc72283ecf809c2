"""Baselines from anomalib, run on ULSAD's data, image size and backbone weights.

The paper took its baselines from anomalib; so do we, through anomalib's own
models: this module only feeds them. It gives them the images ULSAD's θ sees
(S x S, normalised as the backbone wants, no crop), the stages each method asks
for and θ's own tensors (EfficientNet-Lite's ImageNet weights where the paper
used a Wide-ResNet50-2), so that a comparison differs in the method alone:

    build(name, config)            the anomalib model, its pretrained network holding ULSAD's θ
    fit(model, images)             PatchCore and PaDiM: one pass, then anomalib's fit (coreset, Gaussians);
                                   the others: their own loss and optimiser for ``model.epochs`` epochs
    predict(model, images)         image scores (N) and anomaly maps (N x S x S), numpy
    evaluate(model, test)          ULSAD's metric keys (ulsad.evaluate) on the predicted maps
    stored_bytes(model)            what the model keeps from its training images, or learns from them

Where anomalib's model is built for a ResNet, it is adapted through what
anomalib exposes (its classes, layers and building blocks), never by copying
its code; each adaptation is named where it is made (``ADAPTATIONS``).

Needs the optional ``anomalib`` package (``pip install anomalib``, the
``baselines`` extra).
"""
from __future__ import annotations

import ctypes
import importlib.metadata
import io
import tempfile
import time
import warnings
from contextlib import contextmanager, redirect_stderr
from types import SimpleNamespace

import numpy as np
import timm
import torch
from torch import nn

from .backbone import LAYERS, create_body, get_backbone
from .config import Config
from .data import stack_images
from .evaluate import Predictions, compute_metrics, with_scores
from .train import seed_everything

MEMORY_BASED = ("patchcore", "padim")
# The trained baselines' epochs here, short of each paper's own (STFPM 100, Reverse Distillation 200,
# FastFlow 500, DRAEM 700): on two CPU cores an epoch over 100 images at 128 px takes 6 s (FastFlow)
# to 16 s (Reverse Distillation) on one thread, and three seeds of six categories had to fit in an
# hour. Each is also scored after a quarter and half of its budget, which shows how far from its
# plateau it stopped (Chapter 11). DRAEM keeps its paper's budget: its two U-Nets take 10 s for
# one forward pass of 8 images at 128 px here (a CPU epoch of six minutes), so it runs only when
# asked for, on a GPU.
EPOCHS = {"stfpm": 6, "reverse_distillation": 6, "fastflow": 16, "cflow": 6, "draem": 700}
SMOKE_EPOCHS = 1  # the `smoke` profile checks that the code runs; its numbers mean nothing
BASELINES = MEMORY_BASED + ("stfpm", "reverse_distillation", "fastflow", "cflow")  # what the book runs
AVAILABLE = BASELINES + ("draem",)
NAMES = {"patchcore": "PatchCore", "padim": "PaDiM", "stfpm": "STFPM", "reverse_distillation": "Reverse Distillation",
         "fastflow": "FastFlow", "cflow": "CFLOW", "draem": "DRAEM"}
# The stages each method reads (anomalib's defaults; PatchCore takes ULSAD's own, layer2 and layer3).
METHOD_LAYERS = {"padim": ("layer1", "layer2", "layer3"), "stfpm": ("layer1", "layer2", "layer3"),
                 "reverse_distillation": ("layer1", "layer2", "layer3"), "fastflow": ("layer1", "layer2", "layer3"),
                 "cflow": ("layer2", "layer3", "layer4")}
ADAPTATIONS = {
    "patchcore": "none: anomalib's model, θ's layer2 and layer3",
    "padim": f"keeps {550 / 1792:.1%} of its channels, the paper backbone's share, where anomalib has no number",
    "stfpm": "teacher = θ (ImageNet EfficientNet-Lite), student = the same network from random weights",
    "reverse_distillation": ("anomalib's ResNet-18 bottleneck (OCBE) and decoder, with a learned 1 x 1 convolution "
                             "at each end to match EfficientNet-Lite's stage widths"),
    "fastflow": "anomalib's flow blocks and layer norms, built for EfficientNet-Lite's three stages",
    "cflow": "none: anomalib's model on θ's layer2-layer4",
    "draem": "no backbone; Perlin-noise textures as the anomaly source, since the DTD textures cannot be downloaded",
}
TRAIN_BATCH_SIZE = 32  # anomalib's default training batch
PADIM_FEATURES = {"resnet18": 100, "wide_resnet50_2": 550}
PADIM_SHARE = 550 / 1792
# anomalib's default coreset, 10% of the training patches (its greedy selection costs ratio x N^2
# distance evaluations, seconds for a demo category of 100 images x 16 x 16 patches).
CORESET_RATIO = 0.1
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _return_large_blocks_to_os() -> None:
    """Serve large allocations from mmap, so that freed ones go back to the system.

    anomalib's coreset loop allocates and frees an N x d tensor per step; under
    glibc's adaptive threshold those blocks came from the heap and were not
    reused, and a demo category grew the process past 20 GB. The threshold must
    lie below the smallest such block: 25 images at 128 px make 6 MiB blocks
    (6,400 patches x 233 projected dimensions), and with a threshold of 8 MiB a
    second such fit in one process grew it by 2.5 GB (4 MiB with 1 MiB). Whether
    the heap fragments depends on what the process allocated before, so no test
    reproduces it reliably. No-op off glibc.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):
        pass


def anomalib_version() -> str | None:
    """The installed anomalib's version, or None when it is missing."""
    try:
        return importlib.metadata.version("anomalib")
    except importlib.metadata.PackageNotFoundError:
        return None


def epochs_for(profile: str) -> dict[str, int]:
    """The trained baselines' epochs in a profile: ``EPOCHS``, or one epoch in `smoke`."""
    return {name: SMOKE_EPOCHS for name in EPOCHS} if profile == "smoke" else dict(EPOCHS)


def ulsad_backbone(config: Config, layers: tuple[str, ...] | None = None) -> tuple[dict, str]:
    """θ's tensors exactly as :func:`ulsad.train.fit` makes them (same seed), and where they came from.

    ``layers``: the stages the network must reach (default ULSAD's own); a method reading
    a deeper stage gets the deeper network from the same weights.
    """
    seed_everything(config.seed)
    body, source = create_body(config.backbone, layers or config.layers, config.weights, config.allow_random_weights)
    return body.state_dict(), source


@contextmanager
def _timm_without_download():
    """Let anomalib build a network it insists on creating pretrained (STFPM's teacher) with random
    weights instead of a download; θ's tensors are loaded into it right after."""
    create = timm.create_model

    def offline(*args, **kwargs):
        return create(*args, **{**kwargs, "pretrained": False})

    timm.create_model = offline
    try:
        yield
    finally:
        timm.create_model = create


def build(name: str, config: Config, coreset_ratio: float = CORESET_RATIO, epochs: int | None = None):
    """anomalib's model ``name`` on ULSAD's backbone θ, at ULSAD's image size.

    ``epochs``: how long :func:`fit` trains a trained baseline (default ``EPOCHS[name]``).
    The model's ``weights_source`` says where θ came from (None for DRAEM, which has no
    pretrained network).
    """
    if name not in AVAILABLE:
        raise ValueError(f"unknown baseline {name!r}: expected one of {', '.join(AVAILABLE)}")
    if epochs is not None and (name in MEMORY_BASED or epochs < 1):
        raise ValueError(f"epochs={epochs}: only a trained baseline ({', '.join(EPOCHS)}) takes epochs, at least 1")
    with warnings.catch_warnings():  # anomalib's deprecation notices about modules it does not use here
        warnings.simplefilter("ignore", FutureWarning)
        from anomalib import models

    spec = get_backbone(config.backbone)
    size = (config.image_size, config.image_size)
    stages = [spec.stage(layer) for layer in METHOD_LAYERS.get(name, config.layers)]
    if name == "draem":
        seed_everything(config.seed)
        with tempfile.TemporaryDirectory() as no_textures:  # an empty source folder: Perlin noise as texture
            model = models.Draem(dtd_dir=no_textures)
        model.normalize, model.weights_source = (lambda images: images), None  # DRAEM reads [0, 1] images
    else:
        state, source = ulsad_backbone(config, METHOD_LAYERS.get(name))
        if name == "patchcore":  # anomalib names the stages as timm does (blocks.2 for EfficientNet's layer2)
            model = models.Patchcore(backbone=spec.timm_name, layers=stages, pre_trained=False,
                                     coreset_sampling_ratio=coreset_ratio)
        elif name == "padim":
            model = models.Padim(backbone=spec.timm_name, layers=stages, pre_trained=False,
                                 n_features=padim_features(spec))
        elif name == "stfpm":
            with _timm_without_download():
                model = models.Stfpm(backbone=spec.timm_name, layers=stages)
        elif name == "cflow":
            model = models.Cflow(backbone=spec.timm_name, layers=stages, pre_trained=False)
        elif name == "reverse_distillation":
            model = models.ReverseDistillation(backbone="resnet18", pre_trained=False,
                                               pre_processor=models.ReverseDistillation.configure_pre_processor(size))
            _adapt_reverse_distillation(model.model, spec, stages)
        else:
            model = models.Fastflow(backbone="resnet18", pre_trained=False,
                                    pre_processor=models.Fastflow.configure_pre_processor(size))
            _adapt_fastflow(model.model, spec, stages, size)
        # Every network ends at its last stage, so θ's tensors fit exactly (strict loading).
        pretrained(model).load_state_dict(state)
        model.normalize, model.weights_source = spec.normalize, source
    model.epochs = None if name in MEMORY_BASED else epochs or EPOCHS[name]
    model.method = name
    return model.eval()


def pretrained(model) -> nn.Module:
    """The timm network inside an anomalib model that holds θ's tensors (frozen in every method)."""
    inner = model.model
    if hasattr(inner, "teacher_model"):  # STFPM
        return inner.teacher_model.feature_extractor
    if hasattr(inner, "fast_flow_blocks"):  # FastFlow holds a bare timm network
        return inner.feature_extractor
    if hasattr(inner, "encoder"):  # Reverse Distillation, CFLOW
        return inner.encoder.feature_extractor
    return inner.feature_extractor.feature_extractor  # PatchCore, PaDiM


class _Widths(nn.Module):
    """A learned 1 x 1 convolution per feature map, from one list of widths to another."""

    def __init__(self, widths_in, widths_out):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 1) for a, b in zip(widths_in, widths_out, strict=True))

    def forward(self, features):
        return [conv(f) for conv, f in zip(self.convs, features, strict=True)]


def _stage_widths(spec, stages) -> list[int]:
    body = timm.create_model(spec.timm_name, pretrained=False, features_only=True,
                             out_indices=[spec.stages.index(s) for s in stages])
    return body.feature_info.channels()


def _adapt_reverse_distillation(inner: nn.Module, spec, stages) -> None:
    """Reverse Distillation on θ: θ as the encoder, anomalib's ResNet-18 bottleneck and decoder between two
    width-matching 1 x 1 convolutions (the ResNet's stages have the same strides, 4, 8 and 16, as θ's)."""
    from anomalib.models.components import TimmFeatureExtractor

    inner.encoder = TimmFeatureExtractor(backbone=spec.timm_name, layers=stages, pre_trained=False)
    ours, resnet = _stage_widths(spec, stages), [64, 128, 256]
    inner.bottleneck = nn.Sequential(_Widths(ours, resnet), inner.bottleneck)
    inner.decoder = nn.Sequential(inner.decoder, _Widths(resnet, ours))


def _adapt_fastflow(inner: nn.Module, spec, stages, size) -> None:
    """FastFlow on θ: θ's three stages, with anomalib's layer norms and flow blocks built for their shapes."""
    from anomalib.models.image.fastflow.torch_model import create_fast_flow_block

    inner.feature_extractor = timm.create_model(spec.timm_name, pretrained=False, features_only=True,
                                                out_indices=[spec.stages.index(s) for s in stages])
    inner.feature_extractor.requires_grad_(False)
    info = inner.feature_extractor.feature_info
    shapes = [[c, size[0] // r, size[1] // r] for c, r in zip(info.channels(), info.reduction(), strict=True)]
    inner.norms = nn.ModuleList(nn.LayerNorm(shape, elementwise_affine=True) for shape in shapes)
    inner.fast_flow_blocks = nn.ModuleList(create_fast_flow_block(shape, conv3x3_only=False, hidden_ratio=1.0,
                                                                  flow_steps=8) for shape in shapes)


def padim_features(spec) -> int:
    """How many of PaDiM's layer1-3 channels it keeps on this backbone (anomalib's number where it has one)."""
    if spec.name in PADIM_FEATURES:
        return PADIM_FEATURES[spec.name]
    return round(sum(_stage_widths(spec, [spec.stage(layer) for layer in METHOD_LAYERS["padim"]])) * PADIM_SHARE)


def fit(model, images: torch.Tensor, batch_size: int = 16, on_epoch=None):
    """Fit a baseline on normal images (B x 3 x S x S in [0, 1]).

    PatchCore and PaDiM: one pass to collect features, then anomalib's ``fit`` (coreset
    subsampling, per-position Gaussians). The trained baselines: ``model.epochs`` epochs
    of anomalib's own ``training_step`` and ``configure_optimizers`` in batches of
    ``TRAIN_BATCH_SIZE``, shuffled by a generator seeded with the epoch; ``on_epoch(epoch,
    model)`` is called after each (for a learning curve). ``model.seconds_per_epoch`` keeps
    the median epoch's wall time.
    """
    _return_large_blocks_to_os()
    if model.method in MEMORY_BASED:
        with torch.no_grad():
            model.model.train()
            for batch in images.split(batch_size):
                model.model(model.normalize(batch))
            with redirect_stderr(io.StringIO()):  # anomalib's coreset progress bar, unwanted in a chapter
                model.fit()
        return model.eval()
    return _train(model, images, on_epoch)


def _train(model, images: torch.Tensor, on_epoch=None):
    """The trained baselines' loop: what a Lightning trainer would do with the model's steps, without one."""
    optimizer, schedulers = model.configure_optimizers(), []
    if isinstance(optimizer, tuple):  # DRAEM: ([optimiser], [its scheduler, stepped once an epoch])
        (optimizer,), schedulers = optimizer
    # The steps call these three on their trainer: a manual optimiser step (CFLOW) and logging.
    model.optimizers = lambda: optimizer
    model.manual_backward = lambda loss: loss.backward()
    model.log = lambda *args, **kwargs: None
    if model.method == "cflow":  # CFLOW refuses a batch with fewer feature vectors than its fiber batch
        smallest = len(images) % TRAIN_BATCH_SIZE or min(len(images), TRAIN_BATCH_SIZE)
        positions = min(f.shape[-2] * f.shape[-1] for f in model.model.encoder(model.normalize(images[:1])).values())
        model.model.fiber_batch_size = min(model.model.fiber_batch_size, smallest * positions)
    seconds = []
    for epoch in range(model.epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(epoch))
        for step, index in enumerate(order.split(TRAIN_BATCH_SIZE)):
            # contiguous: Reverse Distillation's loss views its features, which a channels-last input breaks
            batch = SimpleNamespace(image=model.normalize(images[index]).contiguous())
            if model.automatic_optimization:
                optimizer.zero_grad()
                model.training_step(batch, step)["loss"].backward()
                optimizer.step()
            else:
                model.training_step(batch, step)
        for scheduler in schedulers:
            scheduler.step()
        seconds.append(time.perf_counter() - start)
        if on_epoch is not None:
            on_epoch(epoch + 1, model.eval())
    model.seconds_per_epoch = float(np.median(seconds))
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
    # Scores as ULSAD takes them (Eq. 10, the map's max), for every method alike
    return compute_metrics(with_scores(pred), which=("combined",))


def stored_bytes(model) -> int:
    """Bytes of what the model keeps from its training images: PatchCore's memory bank, PaDiM's
    per-position means and inverse covariances, and a trained baseline's learned parameters.
    The frozen backbone is not counted."""
    inner = model.model
    if hasattr(inner, "gaussian"):
        kept = [inner.gaussian.mean, inner.gaussian.inv_covariance]
    elif hasattr(inner, "memory_bank"):
        kept = [inner.memory_bank]
    else:
        kept = [p for p in inner.parameters() if p.requires_grad]
    return sum(t.numel() * t.element_size() for t in kept)
