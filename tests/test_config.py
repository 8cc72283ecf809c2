"""Profiles, variants and overrides: every ablation is a configuration, and no invalid one passes."""
import dataclasses
import math

import pytest
import torch

from ulsad.config import TABLE3, VARIANTS, Config, default_profile, get_config, parse_overrides


def test_paper_profile_is_the_papers_setting():
    cfg = get_config("paper")
    assert (cfg.image_size, cfg.backbone, cfg.epochs, cfg.c_star) == (256, "wide_resnet50_2", 200, 384)
    assert (cfg.lr, cfg.weight_decay, cfg.lambda_l, cfg.lambda_g) == (2e-4, 2e-5, 0.5, 0.5)
    assert (cfg.alpha, cfg.beta, cfg.blur_sigma, cfg.blur_kernel) == (0.9, 0.995, 4.0, 33)
    assert not cfg.allow_random_weights


def test_environment_variable_selects_the_profile(monkeypatch):
    monkeypatch.setenv("ULSAD_PROFILE", "smoke")
    assert get_config().image_size == get_config("smoke").image_size == 64


def test_default_profile_depends_on_cuda_and_the_paper_s_is_only_used_when_asked_for(monkeypatch):
    monkeypatch.delenv("ULSAD_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_profile() == "gpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_profile() == "demo"


def test_overrides_win_over_variant_and_profile():
    cfg = get_config("smoke", variant="local_v", lambda_l=0.25)
    assert (cfg.lambda_l, cfg.global_loss, cfg.use_lg, cfg.image_size) == (0.25, "none", False, 64)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_is_a_valid_configuration(name):
    assert isinstance(get_config("smoke", variant=name), Config)


def test_table_3_rows_are_variants():
    rows = {(v.overrides.get("lambda_l", 0.5), v.overrides.get("global_loss", "pg"), v.overrides.get("use_lg", True))
            for v in TABLE3}
    assert len(rows) == len(TABLE3) == 10  # the ten distinct rows of Table 3


def test_lambda_a_defaults_to_lambda_g():
    assert get_config("smoke", lambda_g=0.3).lambda_attn == 0.3
    assert get_config("smoke", lambda_g=0.3, lambda_a=0.1).lambda_attn == 0.1


def test_command_line_overrides_are_typed():
    assert parse_overrides(["epochs=3", "lambda_l=0", "use_lg=false", "lr_milestones=100,150",
                            "backbone=resnet50", "lambda_a=none"]) == dict(
        epochs=3, lambda_l=0.0, use_lg=False, lr_milestones=(100, 150), backbone="resnet50", lambda_a=None)


@pytest.mark.parametrize("item,message", [("epochs", "NAME=VALUE"), ("nope=1", "NAME=VALUE"),
                                          ("epochs=ten", "epochs=ten"), ("use_lg=maybe", "true or false")])
def test_bad_overrides_say_what_was_expected(item, message):
    with pytest.raises(ValueError, match=message):
        parse_overrides([item])


def test_config_round_trips_through_a_dict():
    cfg = get_config("demo", lr_milestones=(10,))
    assert Config.from_dict(cfg.to_dict()) == cfg


# -- validation: every value that would fail later fails here, naming the field --------------------------

def refused(name, value) -> str:
    """The error of the smoke profile with one field set to `value`."""
    with pytest.raises(ValueError) as e:
        get_config("smoke", **{name: value})
    return str(e.value)


FLOAT_FIELDS = [f.name for f in dataclasses.fields(Config) if isinstance(f.default, float) or f.name == "lambda_a"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_every_float_field_refuses_nan_and_infinity(name, value):
    assert refused(name, value) == f"Config.{name}={value}: expected a finite number"


@pytest.mark.parametrize("name,value,expected", [
    ("batch_size", 1, "at least 2 (BatchNorm"),
    ("batch_size", 0, "at least 2"),
    ("quantile_samples", 0, "from 1 to 2**24"),
    ("quantile_samples", 2**24 + 1, "from 1 to 2**24"),
    ("epochs", 0, "at least 1"),
    ("ae_width", 1, "at least 2"),
    ("c_star", 0, "a positive channel count"),
    ("image_size", 100, "a multiple of 32 and at least 64"),
    ("image_size", 32, "a multiple of 32 and at least 64"),
    ("lr", 0.0, "learning rate > 0"),
    ("weight_decay", -1e-5, ">= 0"),
    ("lambda_l", -0.5, ">= 0"),
    ("lambda_a", -1.0, "None or a finite value >= 0"),
    ("blur_sigma", 0.0, "σ > 0"),
    ("blur_kernel", 8, "positive odd"),
    ("blur_kernel", 129, "below 2 x image_size = 128"),
    ("seed", -1, "from 0 to 2**32 - 1"),
    ("seed", 2**32, "from 0 to 2**32 - 1"),
    ("alpha", 1.0, "in [0, 1)"),
    ("beta", 0.5, "above alpha=0.9"),
    ("val_fraction", 0.0, "between 0 and 1"),
    ("lr_milestones", (0,), "epochs >= 1"),
    ("num_workers", -1, ">= 0"),
    ("device", "gpu", "'auto' or a torch device"),
    ("layers", ("layer3",), "including layer2"),
    ("layers", ("layer1", "layer2"), "including layer2"),
    ("layers", (), "including layer2"),
])
def test_values_that_would_fail_later_are_refused_with_what_was_expected(name, value, expected):
    message = refused(name, value)
    assert message.startswith(f"Config.{name}={value!r}: expected ") and expected in message


@pytest.mark.parametrize("name,value,expected", [
    ("epochs", 2.5, "an integer"), ("batch_size", True, "an integer"), ("lambda_l", "0.5", "a finite number"),
    ("use_lg", "yes", "true or false"), ("backbone", 18, "a string"), ("layers", ("layer2", 3), "a list of names"),
    ("lr_milestones", (10.5,), "a list of integers"),
])
def test_values_of_the_wrong_type_are_refused(name, value, expected):
    assert refused(name, value) == f"Config.{name}={value!r}: expected {expected}"


def test_the_smallest_valid_values_are_accepted():
    cfg = get_config("smoke", batch_size=2, quantile_samples=1, epochs=1, ae_width=2, c_star=1, seed=0,
                     blur_kernel=1, blur_sigma=1e-3, lambda_l=0, lambda_a=0.0, layers=("layer2",), num_workers=0)
    assert cfg.batch_size == 2 and cfg.lambda_l == 0


@pytest.mark.parametrize("item,message", [("epochs=2.5", "expected an integer"), ("lr=fast", "expected a number"),
                                          ("lr_milestones=10,x", "expected an integer")])
def test_overrides_of_the_wrong_type_say_what_was_expected(item, message):
    with pytest.raises(ValueError, match=f"override '{item}': {message}$"):
        parse_overrides([item])


@pytest.mark.parametrize("item", ["lambda_l=nan", "quantile_samples=0", "batch_size=1", "lr=inf"])
def test_overrides_that_parse_but_would_fail_later_are_refused_by_validation(item):
    name, _, text = item.partition("=")
    assert refused(name, parse_overrides([item])[name]).startswith(f"Config.{name}={text}")


def test_every_profile_is_a_valid_configuration_with_a_synthetic_size():
    from ulsad.config import PROFILES, SYNTHETIC_SIZES

    assert set(SYNTHETIC_SIZES) == set(PROFILES)
    for name in PROFILES:
        get_config(name).validate()


def test_cpu_full_is_the_demo_setting_at_the_paper_s_image_size():
    cpu_full, demo = get_config("cpu-full"), get_config("demo")
    assert (cpu_full.image_size, cpu_full.c_star, cpu_full.epochs) == (256, 96, 40)
    assert (cpu_full.backbone, cpu_full.weights) == (demo.backbone, demo.weights)
    assert (cpu_full.blur_sigma, cpu_full.blur_kernel) == (4.0, 33)  # the paper's blur at 256 px


def test_the_lite0_profiles_drop_the_final_relu_and_authors_relu_puts_it_back():
    assert get_config("paper").frn_final_relu  # the authors' code
    for profile in ("demo", "smoke", "cpu-full"):
        assert not get_config(profile).frn_final_relu
        assert get_config(profile, "authors_relu") == get_config(profile).replace(frn_final_relu=True)
    assert get_config("paper", "authors_relu") == get_config("paper")


def test_the_gpu_profile_is_the_paper_s_architecture_trained_shorter_without_the_final_relu():
    gpu, paper = get_config("gpu"), get_config("paper")
    assert (gpu.backbone, gpu.image_size, gpu.c_star, gpu.weights) == (paper.backbone, paper.image_size,
                                                                      paper.c_star, paper.weights)
    assert gpu.epochs < paper.epochs and not gpu.frn_final_relu
