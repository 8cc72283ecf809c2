"""The command line: predict writes scores and overlays; errors are one clear line and exit 2."""
import csv

import numpy as np
import pytest
from PIL import Image

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
