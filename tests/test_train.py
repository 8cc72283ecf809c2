"""Algorithm 1 end to end: training lowers the loss, runs repeat, checkpoints round-trip,
and the quantiles normalise the maps as Eq. (9) (corrected) says."""
import pytest
import torch

from ulsad import ULSAD, fit
from ulsad import detector as detector_module
from ulsad import maps
from ulsad.train import theta_features

from conftest import blobs


def test_a_short_fit_lowers_every_loss_term(trained):
    _, history = trained
    for term in ("L_pl", "L_pg", "L_lg", "total"):
        assert history[-1][term] < history[0][term], term


def test_history_has_one_record_per_epoch_with_the_three_terms(trained):
    detector, history = trained
    assert [h["epoch"] for h in history] == list(range(1, detector.config.epochs + 1))
    assert {"L_pl", "L_pg", "L_lg", "total", "seconds"} <= set(history[0])


def test_the_same_seed_repeats_a_run_exactly(smoke):
    cfg = smoke.replace(epochs=2)
    _, h1 = fit(blobs(8), blobs(4, seed=1), cfg, progress=False)
    _, h2 = fit(blobs(8), blobs(4, seed=1), cfg, progress=False)
    _, h3 = fit(blobs(8), blobs(4, seed=1), cfg.replace(seed=1), progress=False)
    assert [h["total"] for h in h1] == [h["total"] for h in h2]
    assert h1[-1]["total"] != h3[-1]["total"]


def test_features_are_computed_once_per_fit(smoke, monkeypatch):
    calls = []
    original = ULSAD.raw_features
    monkeypatch.setattr(ULSAD, "raw_features", lambda self, x: calls.append(len(x)) or original(self, x))
    fit(blobs(8), blobs(4, seed=1), smoke.replace(epochs=3, batch_size=4), progress=False)
    assert sum(calls[:2]) == 8  # the feature cache: 8 training images, once
    assert sum(calls[2:]) == 4  # then the 4 validation images for the quantiles


def test_training_features_are_standardised_per_channel(smoke):
    detector = ULSAD(smoke)
    detector.set_feature_statistics(theta_features(detector, blobs(8), batch_size=4))
    u = detector.features(blobs(8))
    assert torch.allclose(u.mean(dim=(0, 2, 3)), torch.zeros(smoke.c_star), atol=1e-4)
    assert torch.allclose(u.std(dim=(0, 2, 3), correction=0), torch.ones(smoke.c_star), atol=1e-3)
    assert detector.mu.dtype == torch.float64


def test_quantile_normalisation_sends_q_alpha_to_0_and_q_beta_to_0_1():
    values = torch.rand(10_000)
    qa, qb = maps.quantiles(values, 0.9, 0.995)
    assert maps.normalize(torch.tensor([qa, qb]), qa, qb).tolist() == pytest.approx([0.0, 0.1])


def test_quantiles_subsample_beyond_the_limit():
    values = torch.rand(50_000)
    qa, qb = maps.quantiles(values, 0.5, 0.9, max_samples=20_000)
    assert qa == pytest.approx(0.5, abs=0.02) and qb == pytest.approx(0.9, abs=0.02)


def test_calibration_puts_the_validation_maps_quantiles_on_0_and_0_1(trained):
    detector, _ = trained
    val = blobs(6, seed=1)
    m_l, m_g = detector.raw_maps_of(val, batch_size=4)
    q = detector.q.tolist()
    assert torch.quantile(maps.normalize(m_l, q[0], q[1]).flatten(), 0.9).item() == pytest.approx(0, abs=1e-5)
    assert torch.quantile(maps.normalize(m_g, q[2], q[3]).flatten(), 0.995).item() == pytest.approx(0.1, abs=1e-5)


def test_predict_returns_three_maps_and_the_max_of_the_combined_one(trained):
    detector, _ = trained
    out = detector.predict(blobs(3, seed=2))
    assert out["local"].shape == out["global"].shape == out["combined"].shape == (3, 64, 64)
    assert torch.allclose(out["combined"], (out["local"] + out["global"]) / 2)
    assert torch.equal(out["score"], out["combined"].flatten(1).amax(1))


def test_an_anomalous_image_scores_higher_than_normal_ones(trained):
    detector, _ = trained
    normal = blobs(4, seed=3)
    broken = normal.clone()
    broken[:, :, 5:25, 5:25] = torch.rand(4, 3, 20, 20)  # noise patch where the background should be
    assert detector.predict(broken)["score"].min() > detector.predict(normal)["score"].max()


def test_local_only_detector_combines_to_its_local_map(smoke):
    detector, _ = fit(blobs(6), blobs(4, seed=1), smoke.replace(epochs=1, global_loss="none", use_lg=False),
                      progress=False)
    out = detector.predict(blobs(2, seed=2))
    assert out["global"] is None and torch.equal(out["combined"], out["local"])


@pytest.mark.parametrize("variant", [dict(global_loss="pg", use_lg=False), dict(global_loss="pg_direct", use_lg=False)])
def test_global_map_without_L_lg_comes_from_the_loss_that_trained_phi(smoke, variant):
    detector, history = fit(blobs(6), blobs(4, seed=1), smoke.replace(epochs=1, **variant), progress=False)
    assert history[0]["L_lg"] == 0
    m_l, m_g = detector.raw_maps(blobs(2, seed=2))
    assert m_g.shape == m_l.shape and torch.isfinite(m_g).all()


def test_predict_before_calibration_is_an_error(smoke):
    with pytest.raises(RuntimeError, match="calibrate"):
        ULSAD(smoke).eval().predict(blobs(1))


def test_maps_in_training_mode_are_an_error(trained):
    detector, _ = trained
    with pytest.raises(RuntimeError, match="eval"):
        detector.train().raw_maps(blobs(1))
    detector.eval()


def test_fit_needs_two_images(smoke):
    with pytest.raises(ValueError, match="at least 2"):
        fit(blobs(1), blobs(2), smoke, progress=False)


def test_calibrate_at_other_quantiles_without_retraining(trained):
    detector, _ = trained
    q_before = detector.q.clone()
    detector.calibrate(blobs(6, seed=1), alpha=0.5, beta=0.99)
    assert not torch.equal(detector.q, q_before)
    detector.calibrate(blobs(6, seed=1))
    assert torch.allclose(detector.q, q_before)


# -- checkpoints ---------------------------------------------------------------

def test_save_and_load_give_identical_maps(trained, tmp_path):
    detector, _ = trained
    path = detector.save(tmp_path / "d.ckpt", note="test")
    loaded = ULSAD.load(path)
    x = blobs(3, seed=4)
    a, b = detector.predict(x), loaded.predict(x)
    for key in ("local", "global", "combined", "score"):
        assert torch.equal(a[key], b[key]), key
    assert loaded.config == detector.config and loaded.weights_source == detector.weights_source
    assert not list(tmp_path.glob("*.part"))


def test_a_checkpoint_is_as_readable_as_any_file_the_user_writes(trained, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = trained[0].save(tmp_path / "d.ckpt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_trained_detector_is_kept_when_its_final_rename_fails(trained, tmp_path, monkeypatch):
    import os

    target = tmp_path / "d.ckpt"
    target.write_bytes(b"the user's older file")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    kept = tmp_path / "d.ckpt.part"
    with pytest.raises(OSError, match=f"the detector is saved in {kept}, but it could not replace {target}"):
        trained[0].save(target)
    monkeypatch.undo()
    assert ULSAD.load(kept).config == trained[0].config and target.read_bytes() == b"the user's older file"


def test_what_a_killed_save_left_is_replaced_by_the_next_save(trained, tmp_path):
    (tmp_path / "d.ckpt.part").write_bytes(b"")  # a save killed before it wrote anything
    trained[0].save(tmp_path / "d.ckpt")
    assert ULSAD.load(tmp_path / "d.ckpt") and not list(tmp_path.glob("*.part"))


def test_loading_uses_weights_only(trained, tmp_path, monkeypatch):
    detector, _ = trained
    path = detector.save(tmp_path / "d.ckpt")
    seen = {}
    original = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.update(k) or original(*a, **k))
    ULSAD.load(path)
    assert seen["weights_only"] is True


def test_a_checkpoint_of_another_format_version_is_refused(trained, tmp_path, monkeypatch):
    detector, _ = trained
    monkeypatch.setattr(detector_module, "FORMAT_VERSION", 99)
    path = detector.save(tmp_path / "future.ckpt")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="format 99.*reads format 1"):
        ULSAD.load(path)


def test_a_checkpoint_with_unknown_configuration_fields_is_refused(trained, tmp_path):
    detector, _ = trained
    payload = torch.load(detector.save(tmp_path / "d.ckpt"), weights_only=True)
    payload["config"]["new_knob"] = 1
    torch.save(payload, tmp_path / "odd.ckpt")
    with pytest.raises(ValueError, match="new_knob"):
        ULSAD.load(tmp_path / "odd.ckpt")


def test_a_checkpoint_of_another_architecture_is_refused_by_name(trained, tmp_path, smoke):
    detector, _ = trained
    path = detector.save(tmp_path / "d.ckpt")
    with pytest.raises(ValueError, match="c_star: checkpoint 32, expected 64"):
        ULSAD.load(path, config=smoke.replace(c_star=64))


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    (tmp_path / "x.ckpt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="x.ckpt"):
        ULSAD.load(tmp_path / "x.ckpt")
    torch.save({"a": 1}, tmp_path / "y.ckpt")
    with pytest.raises(ValueError, match="not a ULSAD checkpoint"):
        ULSAD.load(tmp_path / "y.ckpt")
    with pytest.raises(FileNotFoundError, match="z.ckpt"):
        ULSAD.load(tmp_path / "z.ckpt")


def test_a_callback_sees_every_epoch_and_cannot_change_the_result(smoke):
    cfg = smoke.replace(epochs=3)
    seen = []

    def look(epoch, detector):
        assert not detector.training
        detector.calibrate(blobs(4, seed=1))  # what a learning curve does between epochs
        seen.append(epoch)
        return {"looked": epoch * 10}

    plain, h1 = fit(blobs(8), blobs(4, seed=1), cfg, progress=False)
    watched, h2 = fit(blobs(8), blobs(4, seed=1), cfg, progress=False, on_epoch=look)
    assert seen == [1, 2, 3] and [h["looked"] for h in h2] == [10, 20, 30]
    assert [h["total"] for h in h1] == [h["total"] for h in h2]
    assert torch.equal(plain.q, watched.q)


def test_an_unreadable_validation_image_stops_the_fit_before_the_first_epoch(smoke, tmp_path):
    from ulsad import data

    data.synth.generate(tmp_path, ["pegboard"], image_size=64, n_train=4, n_val=2, n_test=3)
    load = lambda split: data.load("synthetic", tmp_path, "pegboard", split, image_size=64)  # noqa: E731
    validation = load("validation")
    broken = validation.samples[0].path
    broken.write_bytes(b"")
    epochs = []
    with pytest.raises(data.DataError, match=f"^{broken}: cannot read this image"):
        fit(load("train"), validation, smoke, progress=False, on_epoch=lambda epoch, _: epochs.append(epoch))
    assert epochs == []
