"""benchmarks/baselines.py: the baselines' rows in any profile, checked before the first fit."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import baselines as script  # noqa: E402

from ulsad import data  # noqa: E402
from ulsad.reproduce import source_commit  # noqa: E402

pytest.importorskip("anomalib", reason="the baselines need the optional anomalib package (pip install anomalib)")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return data.synth.generate(tmp_path_factory.mktemp("synthetic"), ["pegboard"], seed=0, image_size=64,
                               n_train=6, n_val=2, n_test=6)


def test_writes_one_row_per_method_category_and_seed_with_its_setting(root, tmp_path, capsys):
    out = tmp_path / "rows" / "baselines.csv"
    assert script.main(["--profile", "smoke", "--root", str(root), "--categories", "pegboard",
                        "--methods", "patchcore", "padim", "--coreset-ratio", "0.05", "--seeds", "0", "1",
                        "--csv", str(out)]) == 0
    rows = pd.read_csv(out)
    assert sorted(zip(rows["method"], rows["seed"])) == [("padim", 0), ("padim", 1), ("patchcore", 0), ("patchcore", 1)]
    assert (rows["category"] == "pegboard").all()
    assert (rows["profile"] == "smoke").all() and (rows["commit"] == source_commit()).all()
    assert (rows.loc[rows["method"] == "patchcore", "coreset_ratio"] == 0.05).all()
    assert "pegboard" in capsys.readouterr().out


def test_a_trained_baseline_runs_for_the_epochs_asked_and_is_scored_along_them(root, tmp_path):
    out = tmp_path / "baselines.csv"
    assert script.main(["--profile", "smoke", "--root", str(root), "--categories", "pegboard",
                        "--methods", "fastflow", "--epochs", "fastflow=2", "--csv", str(out)]) == 0
    rows = pd.read_csv(out)
    assert rows["method"].tolist() == ["fastflow", "fastflow"] and rows["epochs"].tolist() == [1, 2]


@pytest.mark.parametrize("args, named", [
    (["--coreset-ratio", "0"], "--coreset-ratio"),
    (["--categories", "fruit_tray"], "fruit_tray/train"),
    (["--seeds", "0", "-1"], "--seeds"),
    (["--epochs", "stfpm=0"], "--epochs stfpm=0"),
    (["--epochs", "patchcore=3"], "--epochs patchcore=3"),
])
def test_bad_settings_stop_before_any_fit_naming_the_parameter(root, tmp_path, capsys, args, named):
    out = tmp_path / "baselines.csv"
    with pytest.raises(SystemExit):
        script.main(["--profile", "smoke", "--root", str(root), "--csv", str(out), *args])
    assert named in capsys.readouterr().err and not out.exists()


def test_a_missing_root_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        script.main(["--profile", "smoke", "--root", str(tmp_path / "nowhere"), "--csv", str(tmp_path / "b.csv")])
    assert "nowhere is not a folder" in capsys.readouterr().err


def test_the_summary_is_the_mean_over_categories_per_seed_then_over_seeds():
    rows = pd.DataFrame({"method": ["stfpm"] * 4, "seed": [0, 0, 1, 1], "category": ["a", "b", "a", "b"],
                         **{c: [0.6, 0.8, 0.8, 1.0] for c in script.SUMMARY}})
    summary = script.summarize(rows)
    assert summary.loc["stfpm", "image AUROC"] == "80.0 ± 14.1"  # seeds 70 and 90
