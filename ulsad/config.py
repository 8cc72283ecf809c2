"""One configuration dataclass and the named profiles, defined in one place.

A profile is a set of overrides of :class:`Config`'s defaults, which are the
paper's settings. ``ULSAD_PROFILE`` selects a profile; without it the choice is
``paper`` when a CUDA GPU is present and ``demo`` otherwise.

Every ablation of the paper (Table 3, Table 21, Fig. 8) is a *variant*: a named
set of overrides, so that each row of those tables is a configuration and not a
code change.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import torch

from .backbone import BACKBONES, LAYERS

GLOBAL_LOSSES = ("pg", "pg_direct", "none")


@dataclass
class Config:
    """Everything that defines a ULSAD run. Defaults are the paper's (Sec. 4.1, docs/design.md)."""

    # Feature extractor θ (Sec. 3.1)
    image_size: int = 256
    backbone: str = "wide_resnet50_2"
    layers: tuple[str, ...] = ("layer2", "layer3")  # roles: the stride-8 and stride-16 stages of any backbone
    c_star: int = 384  # channels after reduction; the paper never states it (docs/design.md, "Channel reduction")
    weights: str = "imagenet"  # "imagenet", "random", or a path to a checkpoint file
    allow_random_weights: bool = False  # ResNets: fall back to random θ (with a warning) when no weights
    # Networks ψ (Table 4) and φ (Table 5)
    # the authors' last ReLU makes Ũ non-negative (docs/design.md, "Feature reconstruction network")
    frn_final_relu: bool = True
    ae_width: int = 64
    # Losses (Eq. 1-6)
    lambda_l: float = 0.5
    lambda_g: float = 0.5
    lambda_a: float | None = None  # direction weight inside L_pg; None means λ_g
    global_loss: str = "pg"  # "pg" (Eq. 5), "pg_direct" (L_pg^d) or "none"
    use_lg: bool = True  # L_lg (Eq. 6)
    w_pl: float = 1.0
    w_pg: float = 1.0
    w_lg: float = 1.0
    # Optimisation (Algorithm 1)
    epochs: int = 200
    batch_size: int = 8  # not stated in the paper
    lr: float = 2e-4
    weight_decay: float = 2e-5
    lr_milestones: tuple[int, ...] = ()  # epochs where lr is multiplied by 0.1; paper: unstated
    seed: int = 0
    # Inference (Sec. 3.5)
    alpha: float = 0.9
    beta: float = 0.995
    blur_sigma: float = 4.0
    blur_kernel: int = 33
    quantile_samples: int = 2**24  # the limit of torch.quantile
    # Data
    val_fraction: float = 0.1  # held out of train/good when a dataset has no validation set
    # Machinery
    device: str = "auto"
    amp: bool = True  # bfloat16 autocast, CUDA only
    channels_last: bool = True  # CUDA only
    num_workers: int = 0

    def __post_init__(self):
        self.layers = tuple(self.layers)
        self.lr_milestones = tuple(self.lr_milestones)
        self.validate()

    @property
    def lambda_attn(self) -> float:
        """λ_a of L_pg; the authors' implementation sets it to λ_g."""
        return self.lambda_g if self.lambda_a is None else self.lambda_a

    @property
    def feature_size(self) -> int:
        """h* = w* = S/8: the stride of layer2."""
        return self.image_size // 8

    @property
    def has_global_branch(self) -> bool:
        return self.global_loss != "none" or self.use_lg

    def validate(self) -> None:
        def bad(name, expected):
            raise ValueError(f"Config.{name}={getattr(self, name)!r}: expected {expected}")

        if self.image_size < 64 or self.image_size % 32:
            bad("image_size", "a multiple of 32 and at least 64 (the FRN halves S/8 twice, "
                "the global encoder halves S five times)")
        if self.backbone not in BACKBONES:
            bad("backbone", f"one of {', '.join(BACKBONES)}")
        if not self.layers or any(layer not in LAYERS for layer in self.layers):
            bad("layers", f"one or more stage roles from {', '.join(LAYERS)}, e.g. ('layer2', 'layer3')")
        if self.c_star < 1:
            bad("c_star", "a positive channel count")
        if self.global_loss not in GLOBAL_LOSSES:
            bad("global_loss", f"one of {', '.join(GLOBAL_LOSSES)}")
        for name in ("lambda_l", "lambda_g", "w_pl", "w_pg", "w_lg", "weight_decay"):
            if getattr(self, name) < 0:
                bad(name, "a value >= 0")
        if self.lambda_a is not None and self.lambda_a < 0:
            bad("lambda_a", "None or a value >= 0")
        if not 0 <= self.alpha < self.beta <= 1:
            bad("alpha", f"0 <= alpha < beta <= 1 (beta={self.beta})")
        if self.epochs < 1:
            bad("epochs", "at least 1")
        if self.batch_size < 1:
            bad("batch_size", "at least 1")
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            bad("blur_kernel", "a positive odd kernel size")
        if not 0 < self.val_fraction < 1:
            bad("val_fraction", "a fraction between 0 and 1")

    def replace(self, **overrides) -> "Config":
        """A copy with some fields changed; unknown names are an error."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown Config field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown Config field(s): {', '.join(sorted(unknown))}")
        return cls(**d)


# The book's profiles. `demo` is what a 2-core CPU without a GPU runs in minutes;
# `smoke` is for tests and notebook checks. Both shrink c* (and with it ψ's widths)
# and the image, and use ImageNet EfficientNet-Lite0, whose weights install with pip
# (its stride-8 and stride-16 stages give 40 + 112 = 152 channels).
PROFILES: dict[str, dict] = {
    "paper": {},
    "demo": dict(image_size=128, backbone="efficientnet_lite0", c_star=96, ae_width=32, epochs=30,
                 batch_size=8, blur_sigma=2.0, blur_kernel=17),
    "smoke": dict(image_size=64, backbone="efficientnet_lite0", c_star=32, ae_width=16, epochs=2,
                  batch_size=4, blur_sigma=1.0, blur_kernel=9),
}

# Ablations as overrides (Table 3 rows, Table 21's λ_l sweep, Fig. 8's backbones).
VARIANTS: dict[str, dict] = {
    "full": {},
    # Table 3, top half: λ_l = λ_g = 0 (values only)
    "local_v": dict(lambda_l=0.0, global_loss="none", use_lg=False),
    "v_pgd": dict(lambda_l=0.0, lambda_g=0.0, global_loss="pg_direct", use_lg=False),
    "v_pg": dict(lambda_l=0.0, lambda_g=0.0, global_loss="pg", use_lg=False),
    "v_pgd_lg": dict(lambda_l=0.0, lambda_g=0.0, global_loss="pg_direct", use_lg=True),
    "v_pg_lg": dict(lambda_l=0.0, lambda_g=0.0, global_loss="pg", use_lg=True),
    # Table 3, bottom half: λ_l = λ_g = 0.5 (values and directions)
    "local_vd": dict(lambda_l=0.5, global_loss="none", use_lg=False),
    "vd_pgd": dict(global_loss="pg_direct", use_lg=False),
    "vd_pg": dict(global_loss="pg", use_lg=False),
    "vd_pgd_lg": dict(global_loss="pg_direct", use_lg=True),
    "vd_pg_lg": {},  # ULSAD
    # Table 21: λ_l sweep of the local branch alone (its λ_l = 0 and 0.5 columns are
    # Table 3's rows 1 and 6)
    **{f"lambda_l-{v}": dict(lambda_l=v, global_loss="none", use_lg=False) for v in (0.0, 0.01, 0.5, 0.9, 1.0)},
    # Fig. 8: backbones
    **{f"backbone-{b}": dict(backbone=b) for b in BACKBONES},
}


def default_profile() -> str:
    """`ULSAD_PROFILE` if set, else `paper` with a CUDA GPU and `demo` without."""
    name = os.environ.get("ULSAD_PROFILE")
    if name:
        return name
    return "paper" if torch.cuda.is_available() else "demo"


def get_config(profile: str | None = None, variant: str | None = None, **overrides) -> Config:
    """The configuration of a profile (default: :func:`default_profile`), then a variant, then overrides."""
    profile = profile or default_profile()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (ULSAD_PROFILE or profile=): "
                         f"expected one of {', '.join(PROFILES)}")
    fields = dict(PROFILES[profile])
    if variant is not None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}: expected one of {', '.join(VARIANTS)}")
        fields.update(VARIANTS[variant])
    fields.update(overrides)
    return Config().replace(**fields)


def parse_overrides(items: list[str]) -> dict:
    """'name=value' strings (from the command line) -> typed Config overrides.

    Values are read with the type of the field's default: true/false for flags,
    comma-separated lists for tuples, 'none' for an optional number.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in defaults:
            raise ValueError(f"override {item!r}: expected NAME=VALUE with NAME one of "
                             f"{', '.join(defaults)}")
        default = defaults[name]
        try:
            if text.lower() == "none" and name == "lambda_a":
                value = None
            elif isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("expected true or false")
                value = text.lower() in ("true", "1")
            elif isinstance(default, tuple):
                kind = int if name == "lr_milestones" else str
                value = tuple(kind(v) for v in text.split(",") if v)
            elif name == "lambda_a" or isinstance(default, float):
                value = float(text)
            elif isinstance(default, int):
                value = int(text)
            else:
                value = text
        except ValueError as e:
            raise ValueError(f"override {item!r}: {e}") from e
        out[name] = value
    return out


# Size of the synthetic benchmark each profile generates: (train, validation, test) images
# per category. `paper` uses the generator's full default.
SYNTHETIC_SIZES: dict[str, tuple[int, int, int]] = {
    "paper": (200, 50, 150),
    "demo": (100, 30, 90),
    "smoke": (16, 8, 24),
}
