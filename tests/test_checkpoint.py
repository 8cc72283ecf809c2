"""Checkpoints that are damaged or edited are refused when loaded: one line naming the file and what is wrong.

Never a torch traceback, a 41-line size-mismatch dump, a failure halfway through
predict, or NaN scores.
"""
import math
import warnings

import pytest
import torch

from ulsad import ULSAD, get_config
from ulsad.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small calibrated detector (smoke profile, random θ) saved to a file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the random backbone's warning: on purpose here
        detector = ULSAD(get_config("smoke", weights="random"))
    detector.set_quantiles((0.1, 0.2), (0.3, 0.4))
    return detector.save(tmp_path_factory.mktemp("checkpoint") / "det.ckpt")


def edited(checkpoint, tmp_path, edit, name="edited.ckpt"):
    """A copy of the checkpoint with `edit` applied to its payload."""
    payload = torch.load(checkpoint, weights_only=True)
    edit(payload)
    torch.save(payload, tmp_path / name)
    return tmp_path / name


def set_config(**fields):
    return lambda payload: payload["config"].update(fields)


def drop(key):
    return lambda payload: payload.pop(key)


def drop_tensor(key):
    return lambda payload: payload["state_dict"].pop(key)


def fill(key, value):
    return lambda payload: payload["state_dict"][key].fill_(value)


def refused(path, capsys) -> str:
    """What `predict` prints for this checkpoint; it must exit 2 having written nothing."""
    out = path.parent / "predictions"
    assert main(["predict", "--checkpoint", str(path), "image.png", "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(path) in err, err
    return err


def test_a_checkpoint_loads_and_predicts(checkpoint):
    detector = ULSAD.load(checkpoint)
    assert detector.calibrated and torch.isfinite(detector.predict(torch.rand(1, 3, 64, 64))["score"]).all()


def test_a_file_of_random_bytes_is_not_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "random.ckpt"
    path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())
    err = refused(path, capsys)
    assert f"{path} is not a ULSAD checkpoint (not a file torch can read)" in err
    assert "weights_only" not in err


@pytest.mark.parametrize("field", ["config", "state_dict", "weights_source"])
def test_a_checkpoint_without_a_field_names_it(checkpoint, tmp_path, capsys, field):
    err = refused(edited(checkpoint, tmp_path, drop(field)), capsys)
    assert f"has no '{field}'" in err and "KeyError" not in err


@pytest.mark.parametrize("edit,shape", [
    (set_config(c_star=24), "mu has shape (32,), the config gives (24,)"),
    (set_config(image_size=128),
     "global_ae.encoder.5.0.weight has shape (16, 16, 2, 2), the config gives (16, 16, 4, 4)"),
    (set_config(ae_width=32), "global_ae.encoder.0.0.weight has shape (8, 3, 4, 4), the config gives (16, 3, 4, 4)"),
], ids=["c_star", "image_size", "ae_width"])
def test_an_edited_configuration_is_named_by_the_first_tensor_that_differs(checkpoint, tmp_path, capsys, edit, shape):
    err = refused(edited(checkpoint, tmp_path, edit), capsys)
    assert f"architecture differs from its config: {shape}" in err


def test_an_edited_backbone_lists_the_tensors_it_lacks_and_those_it_does_not_build(checkpoint, tmp_path, capsys):
    err = refused(edited(checkpoint, tmp_path, set_config(backbone="resnet18")), capsys)
    assert "architecture differs from its config: missing tensors: theta.body.conv1.weight" in err
    assert "tensors the config does not build: theta.body.conv_stem.weight" in err


def test_an_edited_global_branch_names_the_tensors_the_config_does_not_build(checkpoint, tmp_path, capsys):
    err = refused(edited(checkpoint, tmp_path, set_config(global_loss="none", use_lg=False)), capsys)
    assert "tensors the config does not build: global_ae." in err


def test_a_checkpoint_missing_a_tensor_names_it(checkpoint, tmp_path, capsys):
    err = refused(edited(checkpoint, tmp_path, drop_tensor("frn.encoder.0.0.weight")), capsys)
    assert "is damaged: missing tensors: frn.encoder.0.0.weight" in err


@pytest.mark.parametrize("layers", [["layer3"], ["layer1", "layer3"], ["act1", "layer2"]])
def test_edited_layers_are_refused_at_load_not_halfway_through_predict(checkpoint, tmp_path, capsys, layers):
    """These load into the same tensors but give U at another size than S/8, which φ's Û has."""
    err = refused(edited(checkpoint, tmp_path, set_config(layers=layers)), capsys)
    assert "holds a configuration this version cannot use: Config.layers=" in err and "including layer2" in err


@pytest.mark.parametrize("fields,named", [
    (dict(lambda_l=math.nan), "Config.lambda_l=nan: expected a finite number"),
    (dict(quantile_samples=0), "Config.quantile_samples=0: expected from 1"),
    (dict(c_star=1000), "c_star=1000 exceeds the 152 channels"),
    (dict(new_knob=1), "unknown Config field(s): new_knob"),
], ids=["nan", "zero", "too many channels", "unknown field"])
def test_an_edited_configuration_value_is_refused_by_its_name(checkpoint, tmp_path, capsys, fields, named):
    assert named in refused(edited(checkpoint, tmp_path, set_config(**fields)), capsys)


@pytest.mark.parametrize("key", ["frn.encoder.0.0.weight", "global_ae.head.1.bias", "mu", "sigma"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_weights_or_statistics_are_refused_instead_of_giving_nan_scores(
        checkpoint, tmp_path, capsys, key, value):
    err = refused(edited(checkpoint, tmp_path, fill(key, value)), capsys)
    assert f"holds non-finite values in 1 tensor (e.g. {key})" in err


def test_a_sigma_of_zero_is_refused(checkpoint, tmp_path, capsys):
    assert "σ (sigma) has values <= 0" in refused(edited(checkpoint, tmp_path, fill("sigma", 0.0)), capsys)


def set_q(*q):
    return lambda payload: payload["state_dict"]["q"].copy_(torch.tensor(q))


@pytest.mark.parametrize("edit,message", [
    (set_q(math.nan, math.nan, math.nan, math.nan), "saved before calibrate()"),
    (set_q(0.1, math.inf, 0.3, 0.4), "non-finite quantiles q = [0.1, inf, 0.3, 0.4]"),
    (set_q(0.1, 0.2, math.nan, math.nan), "non-finite quantiles q = [0.1, 0.2, nan, nan]"),
    (set_q(0.2, 0.1, 0.3, 0.4), "do not have q_β > q_α"),
], ids=["uncalibrated", "infinite", "no global pair with a global branch", "reversed"])
def test_quantiles_must_be_finite_and_ordered(checkpoint, tmp_path, capsys, edit, message):
    assert message in refused(edited(checkpoint, tmp_path, edit), capsys)


def test_a_detector_without_a_global_branch_needs_no_global_quantiles(tmp_path):
    """set_quantiles leaves q_α^g and q_β^g NaN when there is no global branch."""
    detector = ULSAD(get_config("smoke", "local_vd", weights="random"))
    detector.set_quantiles((0.1, 0.2), None)
    loaded = ULSAD.load(detector.save(tmp_path / "local.ckpt"))
    assert loaded.global_ae is None and torch.isnan(loaded.q[2:]).all()
