"""The command line: predict writes scores and overlays; errors are one clear line and exit 2, found
before any work; Ctrl-C is one line saying what was kept, and exit 130."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

import ulsad.reproduce
import ulsad.train
from ulsad import ULSAD, data
from ulsad.cli import main

from conftest import blobs


@pytest.fixture
def checkpoint(trained, tmp_path):
    detector, _ = trained
    return detector.save(tmp_path / "det.ckpt")


@pytest.fixture
def image_files(tmp_path):
    paths = []
    for i, img in enumerate(blobs(3, size=80, seed=5)):  # another size: predict resizes
        path = tmp_path / f"img{i}.png"
        Image.fromarray((img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_predict_writes_a_score_per_image_and_an_overlay_each(checkpoint, image_files, tmp_path):
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(checkpoint), *image_files, "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "scores.csv")))
    assert [r["image"] for r in rows] == image_files
    assert all(float(r["score"]) == float(r["score"]) for r in rows)
    for r in rows:
        with Image.open(out / r["overlay"]) as im:
            assert im.size == (64, 64) and im.mode == "RGB"


def test_predict_with_an_unreadable_image_names_it_and_writes_nothing(checkpoint, image_files, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(checkpoint), image_files[0], str(bad), "--out", str(out)]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_checkpoint_is_one_line_not_a_traceback(tmp_path, capsys):
    assert main(["predict", "--checkpoint", str(tmp_path / "none.ckpt"), "x.png", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "none.ckpt" in err and "Traceback" not in err


def test_bad_override_on_the_command_line(tmp_path, capsys):
    code = main(["train", "--root", str(tmp_path), "--category", "c", "--out", str(tmp_path / "x"),
                 "--set", "epochs=many"])
    assert code == 2 and "epochs=many" in capsys.readouterr().err


def test_every_subcommand_documents_its_options(capsys):
    for command in ("train", "predict"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--out" in capsys.readouterr().out


# -- output locations: checked before any work, so that no finished work is lost ------------------------

@pytest.fixture
def no_work(monkeypatch):
    """Training, loading a checkpoint and reproducing fail the test: the output check must come first."""
    def fail(*args, **kwargs):
        raise AssertionError("work started before the output location was checked")

    monkeypatch.setattr(ulsad.train, "fit", fail)
    monkeypatch.setattr(ULSAD, "load", fail)
    monkeypatch.setattr(ulsad.reproduce, "reproduce", fail)


@pytest.fixture(params=["read-only folder", "under a file"])
def unwritable(request, tmp_path):
    """A folder nothing can be written in: a read-only one (skipped where chmod does not stop this
    user, as root), or a path under a file, which nobody can make."""
    if request.param == "under a file":
        (tmp_path / "a-file").write_text("not a folder")
        return tmp_path / "a-file" / "folder"
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    request.addfinalizer(lambda: folder.chmod(0o700))
    if os.access(folder, os.W_OK):
        pytest.skip("chmod does not stop this user (root) from writing")
    return folder


def one_error_line(capsys, *fragments) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(f in err for f in fragments), err
    return err


def train_args(root, out, *more):
    return ["train", "--root", str(root), "--category", "pegboard", "--profile", "smoke", "--set", "weights=random",
            "--set", "epochs=1", "--no-progress", "--out", str(out), *more]


def test_train_refuses_a_checkpoint_path_it_could_not_write_before_training(unwritable, tmp_path, no_work, capsys):
    out = unwritable / "det.ckpt"
    assert main(train_args(tmp_path, out)) == 2
    one_error_line(capsys, f"--out {out}", "cannot write in" if unwritable.exists() else "is a file")


def test_train_refuses_an_existing_folder_as_its_checkpoint(tmp_path, no_work, capsys):
    assert main(train_args(tmp_path, tmp_path)) == 2
    one_error_line(capsys, f"--out {tmp_path} is a folder", "detector.ckpt")


@pytest.mark.parametrize("command", ["predict", "reproduce"])
def test_predict_and_reproduce_refuse_an_output_folder_they_could_not_write(
        command, unwritable, tmp_path, no_work, capsys):
    out = unwritable / "results"
    args = {"predict": ["predict", "--checkpoint", str(tmp_path / "det.ckpt"), "x.png"],
            "reproduce": ["reproduce", "--root", str(tmp_path)]}[command]
    assert main([*args, "--out", str(out)]) == 2
    one_error_line(capsys, f"--out {out}")


@pytest.mark.parametrize("command", ["predict", "reproduce", "synth"])
def test_an_existing_file_is_not_an_output_folder(command, tmp_path, no_work, capsys):
    scores = tmp_path / "scores.csv"
    scores.write_text("kept")
    args = {"predict": ["predict", "--checkpoint", str(tmp_path / "det.ckpt"), "x.png", "--out", str(scores)],
            "reproduce": ["reproduce", "--root", str(tmp_path), "--out", str(scores)],
            "synth": ["synth", "--root", str(scores)]}[command]
    assert main(args) == 2
    one_error_line(capsys, f"{scores} is a file; expected a folder")
    assert scores.read_text() == "kept"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A tiny synthetic benchmark with one category."""
    return data.synth.generate(tmp_path_factory.mktemp("synthetic"), ["pegboard"], image_size=64,
                               n_train=4, n_val=2, n_test=3)


def test_train_makes_the_checkpoints_folder_when_missing(synthetic, tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "det.ckpt"
    assert main(train_args(synthetic, out)) == 0
    assert ULSAD.load(out).config.epochs == 1 and f"saved {out}" in capsys.readouterr().out


# -- integer options and --set: refused before any work, naming the option or field ---------------------

@pytest.mark.parametrize("args,message", [
    (["predict", "--checkpoint", "c.ckpt", "x.png", "--out", "o", "--batch-size", "0"],
     "argument --batch-size: expected an integer >= 1, got 0"),
    (["predict", "--checkpoint", "c.ckpt", "x.png", "--out", "o", "--batch-size", "-1"],
     "argument --batch-size: expected an integer >= 1, got -1"),
    (["evaluate", "--checkpoint", "c.ckpt", "--root", "r", "--category", "c", "--batch-size", "many"],
     "argument --batch-size: expected an integer >= 1, got many"),
    (["train", "--root", "r", "--category", "c", "--out", "o.ckpt", "--seed", "-1"],
     "argument --seed: expected an integer from 0 to 4294967295, got -1"),
    (["reproduce", "--root", "r", "--out", "o", "--seeds", "0"], "argument --seeds: expected an integer >= 1, got 0"),
    (["synth", "--root", "r", "--n-test", "2"], "argument --n-test: expected an integer >= 3, got 2"),
])
def test_integer_options_say_what_they_expect(args, message, no_work, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("override,message", [
    ("lambda_l=nan", "Config.lambda_l=nan: expected a finite number"),
    ("quantile_samples=0", "Config.quantile_samples=0: expected from 1 to 2**24"),
    ("batch_size=1", "Config.batch_size=1: expected at least 2 (BatchNorm"),
])
def test_overrides_that_would_fail_after_training_fail_before_it(override, message, tmp_path, no_work, capsys):
    assert main(train_args(tmp_path, tmp_path / "det.ckpt", "--set", override)) == 2
    one_error_line(capsys, message)


# -- Ctrl-C --------------------------------------------------------------------------------------------------

def test_ctrl_c_during_training_says_nothing_was_written_and_exits_130(synthetic, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ulsad.train, "fit", interrupted)
    out = tmp_path / "det.ckpt"
    assert main(train_args(synthetic, out)) == 130
    err = capsys.readouterr().err
    assert err == f"interrupted: training stopped before it finished; nothing was written to {out}\n"
    assert not out.exists()


# -- outputs that would replace inputs, and names of any encoding -------------------------------------------

def test_train_refuses_a_checkpoint_inside_the_dataset_folder(synthetic, no_work, capsys):
    image = next((synthetic / "pegboard" / "train" / "good").iterdir())
    before = image.read_bytes()
    assert main(train_args(synthetic, image)) == 2
    one_error_line(capsys, f"--out {image} lies inside the dataset folder --root {synthetic}")
    assert image.read_bytes() == before


def test_reproduce_refuses_results_inside_the_dataset_folder(synthetic, no_work, capsys):
    assert main(["reproduce", "--root", str(synthetic), "--out", str(synthetic / "results")]) == 2
    one_error_line(capsys, "lies inside the dataset folder --root")


def test_predict_refuses_an_output_folder_where_an_overlay_would_replace_an_input(checkpoint, image_files,
                                                                                   tmp_path, capsys):
    folder = tmp_path / "pin"
    folder.mkdir()
    first, second = folder / "a.png", folder / "0000_a.png"  # the overlay of a.png would be 0000_a.png
    for path, source in ((first, image_files[0]), (second, image_files[1])):
        path.write_bytes(open(source, "rb").read())
    before = second.read_bytes()
    assert main(["predict", "--checkpoint", str(checkpoint), str(first), str(second), "--out", str(folder)]) == 2
    one_error_line(capsys, f"the output {second} would replace the input {second}")
    assert second.read_bytes() == before


def test_predict_keeps_a_file_name_that_is_not_utf8_as_its_bytes(checkpoint, image_files, tmp_path):
    name = os.fsdecode(b"\xffimage.png")
    odd = tmp_path / name
    odd.write_bytes(open(image_files[0], "rb").read())
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(checkpoint), str(odd), "--out", str(out)]) == 0
    table = (out / "scores.csv").read_bytes()
    assert os.fsencode(str(odd)) in table and not list(out.glob("*.part"))


def test_train_refuses_two_different_seeds(tmp_path, no_work, capsys):
    assert main(train_args(tmp_path, tmp_path / "out" / "det.ckpt", "--seed", "3", "--set", "seed=4")) == 2
    one_error_line(capsys, "--seed 3 and --set seed=4 disagree")


def test_train_names_the_profile_in_force_when_none_is_given(synthetic, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ULSAD_PROFILE", "smoke")
    args = train_args(synthetic, tmp_path / "det.ckpt")
    args.remove("--profile"), args.remove("smoke")
    assert main(args) == 0
    assert "profile smoke," in capsys.readouterr().out
