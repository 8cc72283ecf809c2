"""Profiles, variants and overrides: every ablation is a configuration."""
import pytest
import torch

from ulsad.config import VARIANTS, Config, default_profile, get_config, parse_overrides


def test_paper_profile_is_the_papers_setting():
    cfg = get_config("paper")
    assert (cfg.image_size, cfg.backbone, cfg.epochs, cfg.c_star) == (256, "wide_resnet50_2", 200, 384)
    assert (cfg.lr, cfg.weight_decay, cfg.lambda_l, cfg.lambda_g) == (2e-4, 2e-5, 0.5, 0.5)
    assert (cfg.alpha, cfg.beta, cfg.blur_sigma, cfg.blur_kernel) == (0.9, 0.995, 4.0, 33)
    assert not cfg.allow_random_weights


def test_environment_variable_selects_the_profile(monkeypatch):
    monkeypatch.setenv("ULSAD_PROFILE", "smoke")
    assert get_config().image_size == get_config("smoke").image_size == 64


def test_default_profile_depends_on_cuda(monkeypatch):
    monkeypatch.delenv("ULSAD_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_profile() == "paper"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_profile() == "demo"


def test_overrides_win_over_variant_and_profile():
    cfg = get_config("smoke", variant="local_v", lambda_l=0.25)
    assert (cfg.lambda_l, cfg.global_loss, cfg.use_lg, cfg.image_size) == (0.25, "none", False, 64)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_is_a_valid_configuration(name):
    assert isinstance(get_config("smoke", variant=name), Config)


def test_table_3_rows_are_variants():
    rows = {(v.get("lambda_l", 0.5), v.get("global_loss", "pg"), v.get("use_lg", True))
            for k, v in VARIANTS.items() if not k.startswith(("lambda_l-", "backbone-", "full"))}
    assert len(rows) == 10  # the ten distinct rows of Table 3


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
