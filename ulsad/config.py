"""One configuration dataclass and the named profiles, defined in one place.

A profile is a set of overrides of :class:`Config`'s defaults, which are the
paper's settings. ``ULSAD_PROFILE`` selects a profile; without it the choice is
``gpu`` when a CUDA GPU is present and ``demo`` otherwise (``paper`` only when asked for).

Every ablation of the paper (Table 3, Table 21, Fig. 8) is a *variant*: a named
set of overrides, so that each row of those tables is a configuration and not a
code change.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, field

import torch

from .backbone import BACKBONES, LAYERS

GLOBAL_LOSSES = ("pg", "pg_direct", "none")
# The roles θ may read U from: layer2 (stride 8) sets U's size S/8, so no finer stage may be among them.
FEATURE_LAYERS = LAYERS[LAYERS.index("layer2"):]
TUPLE_ELEMENTS = {"layers": str, "lr_milestones": int}  # the element type of each tuple field
_KIND_WORDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}


def _field_kind(name: str, default) -> type:
    """The type a field's values have: its default's, and float for the optional λ_a."""
    return float if name == "lambda_a" else type(default)


def _has_kind(value, kind: type) -> bool:
    """isinstance for field values: a bool is no number, any finite real is a float (NaN and inf are not)."""
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real) and math.isfinite(value)
    return isinstance(value, kind)


def _check_type(name: str, value, default) -> None:
    """A field must hold its default's type, so that NaN or a string (from --set or an edited checkpoint)
    cannot slip past the range checks, where every comparison with NaN is False."""
    kind = _field_kind(name, default)
    if name == "lambda_a" and value is None:
        return
    if kind is tuple:
        element = TUPLE_ELEMENTS[name]
        ok = isinstance(value, tuple) and all(_has_kind(v, element) for v in value)
        expected = f"a list of {'names' if element is str else 'integers'}"
    else:
        ok, expected = _has_kind(value, kind), _KIND_WORDS[kind]
    if not ok:
        raise ValueError(f"Config.{name}={value!r}: expected {expected}")


def _is_device(text: str) -> bool:
    """Whether torch can parse `text` as a device: a typo then fails here, not when training starts."""
    try:
        torch.device(text)
    except (RuntimeError, TypeError):
        return False
    return True


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
    # the authors' last ReLU makes Ũ non-negative, so l_v keeps a floor (docs/design.md, "The final ReLU");
    # the paper profile keeps it, the Lite0 profiles drop it (chapter 5, section 5.6)
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
    # bfloat16 autocast on CUDA GPUs that compute in it (detector.native_bfloat16). Without it, float32
    # convolutions may still run in TF32 on such GPUs (PyTorch's default for cuDNN).
    amp: bool = True
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
        """Refuse every value that would fail later (after hours of training, or mid-predict) or give NaN.

        Each error names the field and what it expects.
        """
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), f.default)

        def expect(name, ok, expected):
            if not ok:
                raise ValueError(f"Config.{name}={getattr(self, name)!r}: expected {expected}")

        expect("image_size", self.image_size >= 64 and self.image_size % 32 == 0,
               "a multiple of 32 and at least 64 (the FRN halves S/8 twice, the global encoder halves S five times)")
        expect("backbone", self.backbone in BACKBONES, f"one of {', '.join(BACKBONES)}")
        expect("layers", bool(self.layers) and set(self.layers) <= set(FEATURE_LAYERS) and "layer2" in self.layers,
               f"stage roles from {', '.join(FEATURE_LAYERS)} including layer2, e.g. ('layer2', 'layer3'): "
               "U is read at the stride-8 stage's S/8 x S/8, the size ψ and φ are built for")
        expect("c_star", self.c_star >= 1, "a positive channel count")
        expect("ae_width", self.ae_width >= 2, "at least 2 (φ's first layers have ae_width / 2 channels)")
        for name in ("lambda_l", "lambda_g", "w_pl", "w_pg", "w_lg", "weight_decay"):
            expect(name, getattr(self, name) >= 0, "a finite value >= 0")
        expect("lambda_a", self.lambda_a is None or self.lambda_a >= 0, "None or a finite value >= 0")
        expect("global_loss", self.global_loss in GLOBAL_LOSSES, f"one of {', '.join(GLOBAL_LOSSES)}")
        expect("epochs", self.epochs >= 1, "at least 1")
        expect("batch_size", self.batch_size >= 2, "at least 2 (BatchNorm needs 2 images in a training batch)")
        expect("lr", self.lr > 0, "a finite learning rate > 0")
        expect("lr_milestones", all(m >= 1 for m in self.lr_milestones), "epochs >= 1, e.g. (100, 150)")
        expect("seed", 0 <= self.seed < 2**32, "an integer from 0 to 2**32 - 1 (NumPy's seed range)")
        expect("alpha", 0 <= self.alpha < 1, "a quantile in [0, 1)")
        expect("beta", self.alpha < self.beta <= 1, f"a quantile above alpha={self.alpha} and at most 1")
        expect("blur_sigma", self.blur_sigma > 0, "a finite σ > 0")
        expect("blur_kernel", self.blur_kernel % 2 == 1 and 1 <= self.blur_kernel < 2 * self.image_size,
               f"a positive odd kernel size below 2 x image_size = {2 * self.image_size} (reflect padding)")
        expect("quantile_samples", 1 <= self.quantile_samples <= 2**24, "from 1 to 2**24 (torch.quantile's limit)")
        expect("val_fraction", 0 < self.val_fraction < 1, "a fraction between 0 and 1")
        expect("device", self.device == "auto" or _is_device(self.device),
               "'auto' or a torch device: cpu, cuda, cuda:1, mps")
        expect("num_workers", self.num_workers >= 0, "a count >= 0")

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
# (its stride-8 and stride-16 stages give 40 + 112 = 152 channels). `cpu-full` is
# the best the training-budget study (chapter 7, section 7.5) found within reach of
# a CPU: 256 px, where the border takes a smaller share of the feature grid; c* = 96,
# since all 152 channels did not help at 256 px; 40 epochs, by which the 256-px
# curves have levelled off; and 200 / 50 / 300 images per category.
#
# The Lite0 profiles depart from the authors' code in one place: ψ ends without its final
# ReLU (frn_final_relu=False). Eq. (1) and (7) compare ψ's output with the signed,
# standardised U; with the ReLU, l_v keeps a floor of mean_c min(U, 0)^2 that is most of
# the local map on normal images and drowns the defects (chapter 5, section 5.6, measures
# it). The `authors_relu` variant puts the ReLU back, for a row beside every main result.
#
# `gpu` is what a reader with one GPU (a free Colab T4, 15 GB, say) runs by default: the paper's
# architecture (Wide-ResNet50-2 with its ImageNet weights, 256 px, c* = 384) without ψ's final ReLU,
# for 60 epochs instead of 200 (a category's fit is then 60 x 200 image-epochs; no GPU has timed it
# yet: benchmarks/gpu_check.py does). `paper` is the authors' setting, for reproducing the tables;
# it is used only when asked for.
PROFILES: dict[str, dict] = {
    "paper": {},
    "demo": dict(image_size=128, backbone="efficientnet_lite0", c_star=96, ae_width=32, epochs=30,
                 batch_size=8, blur_sigma=2.0, blur_kernel=17, frn_final_relu=False),
    "smoke": dict(image_size=64, backbone="efficientnet_lite0", c_star=32, ae_width=16, epochs=2,
                  batch_size=4, blur_sigma=1.0, blur_kernel=9, frn_final_relu=False),
    "cpu-full": dict(image_size=256, backbone="efficientnet_lite0", c_star=96, ae_width=32, epochs=40,
                     batch_size=8, frn_final_relu=False),
    "gpu": dict(epochs=60, frn_final_relu=False),
}

@dataclass(frozen=True)
class Variant:
    """A named configuration from the paper's ablations, and where the paper prints its numbers.

    overrides: Config fields that differ from the profile. table3_row: its row of Table 3
    (MVTec LOCO means). per_category: (table, block, column) of its per-category values on
    MVTec LOCO in Tables 21-23 (block is Table 22's λ setting, None elsewhere).
    """

    name: str
    overrides: dict = field(default_factory=dict)
    table3_row: int | None = None
    per_category: tuple | None = None


_V, _VD = "λ_l = λ_g = 0.0", "λ_l = λ_g = 0.5"  # Table 22's two blocks
# Table 21's λ_l = 0 and 0.5 columns equal Table 3's rows 1 and 6 (the local branch alone).
_ABLATIONS = (
    Variant("full"),  # ULSAD; Tables 1-2 and 6-20 report it
    Variant("authors_relu", dict(frn_final_relu=True)),  # ULSAD with ψ's final ReLU, as the authors' code has it
    # Table 3, top half: values only
    Variant("local_v", dict(lambda_l=0.0, global_loss="none", use_lg=False), 1, (21, None, "λ_l = 0")),
    Variant("v_pgd", dict(lambda_l=0.0, lambda_g=0.0, global_loss="pg_direct", use_lg=False), 2, (22, _V, "L_pg^d")),
    Variant("v_pg", dict(lambda_l=0.0, lambda_g=0.0, global_loss="pg", use_lg=False), 3, (22, _V, "L_pg")),
    Variant("v_pgd_lg", dict(lambda_l=0.0, lambda_g=0.0, global_loss="pg_direct", use_lg=True), 4,
            (22, _V, "L_pg^d; L_lg")),
    Variant("v_pg_lg", dict(lambda_l=0.0, lambda_g=0.0, global_loss="pg", use_lg=True), 5, (22, _V, "L_pg; L_lg")),
    # Table 3, bottom half: values and directions (λ_l = λ_g = 0.5, the defaults)
    Variant("local_vd", dict(lambda_l=0.5, global_loss="none", use_lg=False), 6, (21, None, "λ_l = 0.5")),
    Variant("vd_pgd", dict(global_loss="pg_direct", use_lg=False), 7, (22, _VD, "L_pg^d")),
    Variant("vd_pg", dict(global_loss="pg", use_lg=False), 8, (22, _VD, "L_pg")),
    Variant("vd_pgd_lg", dict(global_loss="pg_direct", use_lg=True), 9, (22, _VD, "L_pg^d; L_lg")),
    Variant("vd_pg_lg", {}, 10, (22, _VD, "L_pg; L_lg")),  # ULSAD again, as Table 3 names it
    # Table 21: λ_l of the local branch alone
    *(Variant(f"lambda_l-{v}", dict(lambda_l=v, global_loss="none", use_lg=False), None, (21, None, f"λ_l = {head}"))
      for v, head in ((0.0, "0"), (0.01, "0.01"), (0.5, "0.5"), (0.9, "0.9"), (1.0, "1.0"))),
)
# Fig. 8 and Table 23: backbones (Table 23's "Wide-ResNet100-2" is Wide-ResNet101-2: see paper.errata()).
_TABLE23 = {"resnet50": "ResNet50", "resnet152": "ResNet152", "wide_resnet50_2": "Wide-ResNet50-2",
            "wide_resnet101_2": "Wide-ResNet100-2"}
VARIANTS: dict[str, Variant] = {
    v.name: v for v in (*_ABLATIONS, *(Variant(f"backbone-{b}", dict(backbone=b), None,
                                               (23, None, _TABLE23[b]) if b in _TABLE23 else None)
                                       for b in BACKBONES))
}
TABLE3 = tuple(sorted((v for v in VARIANTS.values() if v.table3_row), key=lambda v: v.table3_row))


def default_profile() -> str:
    """`ULSAD_PROFILE` if set, else `gpu` with a CUDA GPU and `demo` without."""
    name = os.environ.get("ULSAD_PROFILE")
    if name:
        return name
    return "gpu" if torch.cuda.is_available() else "demo"


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
        fields.update(VARIANTS[variant].overrides)
    fields.update(overrides)
    return Config().replace(**fields)


def parse_overrides(items: list[str]) -> dict:
    """'name=value' strings (from the command line) -> typed Config overrides.

    Values are read with the type of the field's default: true/false for flags,
    comma-separated lists for tuples, 'none' for an optional number. Only the
    type is checked here; :meth:`Config.validate` checks the value (NaN too).
    """
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in defaults:
            raise ValueError(f"override {item!r}: expected NAME=VALUE with NAME one of "
                             f"{', '.join(defaults)}")
        try:
            out[name] = _parse_value(name, text.strip(), defaults[name])
        except ValueError as e:
            raise ValueError(f"override {item!r}: {e}") from None
    return out


def _parse_value(name: str, text: str, default):
    """One override's text as its field's type; the error says what was expected, not Python's parse error."""
    kind = _field_kind(name, default)
    if kind is tuple:
        element = TUPLE_ELEMENTS[name]
        return tuple(_parse_scalar(v.strip(), element) for v in text.split(",") if v.strip())
    if name == "lambda_a" and text.lower() == "none":
        return None
    return _parse_scalar(text, kind)


def _parse_scalar(text: str, kind: type):
    """A flag, number or name from text (numbers unchecked: NaN is refused by validate, with the field's name)."""
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError("expected true or false")
        return text.lower() in ("true", "1")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"expected {'an integer' if kind is int else 'a number'}") from None


# Size of the synthetic benchmark each profile generates: (train, validation, test) images
# per category. `paper` uses the generator's full default.
# The test sets hold 100 images of each type (normal, logical, structural): an AUROC
# from 30 + 30 images has a standard error of 6-7 points, from 100 + 100 about 3.
SYNTHETIC_SIZES: dict[str, tuple[int, int, int]] = {
    "paper": (200, 50, 300),
    "demo": (100, 30, 300),
    "smoke": (16, 8, 24),
    "cpu-full": (200, 50, 300),
    "gpu": (200, 50, 300),
}
