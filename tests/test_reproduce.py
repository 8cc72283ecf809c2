"""The reproduction runner: runs.csv, summaries beside the paper with their provenance, resume, Ray."""
import csv
import errno
import os
import shutil
import socket
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import ulsad.train
from ulsad import data, get_config, paper
from ulsad.cli import main
from ulsad.config import TABLE3
from ulsad.reproduce import KEY, LABELS, config_id, load_runs, paper_value, reproduce, source_commit, summarize

SMOKE = dict(profile="smoke", overrides={"weights": "random", "epochs": 1}, verbose=False)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return data.synth.generate(tmp_path_factory.mktemp("synthetic"), ["pegboard"], image_size=64,
                               n_train=16, n_val=8, n_test=24)


@pytest.fixture(scope="module")
def sweep(root, tmp_path_factory):
    """Two variants x two seeds on one smoke category; (returned rows, output folder)."""
    out = tmp_path_factory.mktemp("sweep")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the random backbone's warning: on purpose here
        runs = reproduce("synthetic", root, ["pegboard"], seeds=2, variants=["full", "local_vd"], out=out, **SMOKE)
    return runs, out


@pytest.fixture
def counted_fit(monkeypatch):
    """ulsad.train.fit, counting the seeds it trains."""
    seeds, fit = [], ulsad.train.fit

    def counting(train, validation, cfg, **kwargs):
        seeds.append(cfg.seed)
        return fit(train, validation, cfg, **kwargs)

    monkeypatch.setattr(ulsad.train, "fit", counting)
    return seeds


@pytest.fixture
def no_fit(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("nothing should be trained")
    monkeypatch.setattr(ulsad.train, "fit", fail)


def test_runs_csv_has_one_row_per_run_with_its_provenance(sweep):
    runs, out = sweep
    on_disk = load_runs(out)
    assert len(runs) == len(on_disk) == 4
    assert sorted(zip(on_disk["variant"], on_disk["seed"])) == [("full", 0), ("full", 1),
                                                                ("local_vd", 0), ("local_vd", 1)]
    assert {*KEY, *LABELS, "data", "weights", "backbone", "image_size", "epochs", "config", "device", "wall_s",
            "image_auroc", "pixel_auroc", "aupro", "local.image_auroc", "logical.image_auroc"} <= set(on_disk.columns)
    assert set(on_disk["data"]) == {"SYNTHETIC"} and set(on_disk["weights"]) == {"random"}
    assert set(on_disk["image_size"]) == {64} and set(on_disk["epochs"]) == {1} and set(on_disk["device"]) == {"cpu"}
    assert on_disk["image_auroc"].between(0, 1).all() and (on_disk["wall_s"] > 0).all()
    assert set(on_disk["commit"]) == {source_commit()}
    local_only = on_disk[on_disk["variant"] == "local_vd"]
    assert local_only["global.image_auroc"].isna().all()  # Table 3 row 6 has no global branch


def test_summary_is_mean_and_std_over_seeds_in_percent_with_no_paper_column_for_synthetic_data(sweep):
    runs, out = sweep
    by_category = pd.read_csv(out / "summary_by_category.csv")
    row = by_category[(by_category["variant"] == "full") & (by_category["metric"] == "image_auroc")].iloc[0]
    ours = runs.loc[runs["variant"] == "full", "image_auroc"] * 100
    assert row["n_seeds"] == 2
    assert row["mean"] == pytest.approx(ours.mean()) and row["std"] == pytest.approx(ours.std())
    assert np.isnan(row["paper"]) and np.isnan(row["difference"])
    assert "SYNTHETIC" in row["provenance"] and "RANDOM" in row["provenance"] and "no counterpart" in row["provenance"]
    by_dataset = pd.read_csv(out / "summary_by_dataset.csv")
    assert set(by_dataset["category"]) == {"all"} and set(by_dataset["n_categories"]) == {1}
    for name in ("summary_by_category.md", "summary_by_dataset.md"):
        text = (out / name).read_text()
        assert "Our runs, not the paper's" in text and "SYNTHETIC data" in text and "RANDOM weights" in text
        assert "profile smoke" in text and "| image_auroc |" in text and " ± " in text


def test_a_second_call_trains_nothing(sweep, root, tmp_path, no_fit):
    _, out = sweep
    shutil.copytree(out, tmp_path / "again")
    runs = reproduce("synthetic", root, ["pegboard"], seeds=2, variants=["full", "local_vd"],
                     out=tmp_path / "again", **SMOKE)
    assert len(runs) == 4 and len(load_runs(tmp_path / "again")) == 4


def test_more_seeds_train_only_the_new_runs(sweep, root, tmp_path, counted_fit):
    _, out = sweep
    shutil.copytree(out, tmp_path / "more")
    runs = reproduce("synthetic", root, ["pegboard"], seeds=3, variants=["full"], out=tmp_path / "more", **SMOKE)
    assert counted_fit == [2] and sorted(runs["seed"]) == [0, 1, 2]
    assert len(load_runs(tmp_path / "more")) == 5


def test_a_row_whose_name_now_means_another_configuration_is_run_again_and_kept_aside(
        sweep, root, tmp_path, counted_fit):
    """As when the default backbone changes: same variant, profile and overrides, another Config."""
    _, out = sweep
    shutil.copytree(out, tmp_path / "moved")
    runs_csv = tmp_path / "moved" / "runs.csv"
    table = load_runs(tmp_path / "moved")
    old = table["variant"] == "full"
    table.loc[old, "config"] = table.loc[old, "config"].str.replace('"efficientnet_lite0"', '"resnet18"')
    table.loc[old, "config_id"] = "made-before"
    table.to_csv(runs_csv, index=False)
    runs = reproduce("synthetic", root, ["pegboard"], seeds=2, variants=["full", "local_vd"],
                     out=tmp_path / "moved", **SMOKE)
    assert sorted(counted_fit) == [0, 1] and len(runs) == 4
    assert all('"efficientnet_lite0"' in c for c in runs["config"])
    superseded = pd.read_csv(tmp_path / "moved" / "superseded.csv")
    assert len(superseded) == 2 and all('"resnet18"' in c for c in superseded["config"])


def test_a_run_is_its_configuration_and_each_name_of_it_gets_its_row(sweep, root, tmp_path, no_fit):
    """`full` and `vd_pg_lg` are both ULSAD: asking for both trains nothing more, and each name gets the row."""
    _, out = sweep
    shutil.copytree(out, tmp_path / "names")
    runs = reproduce("synthetic", root, ["pegboard"], seeds=2, variants=["full", "vd_pg_lg"],
                     out=tmp_path / "names", **SMOKE)
    assert len(load_runs(tmp_path / "names")) == 4  # nothing added
    assert sorted(runs["variant"]) == ["full", "full", "vd_pg_lg", "vd_pg_lg"]
    full, same = (runs[runs["variant"] == v].sort_values("seed") for v in ("full", "vd_pg_lg"))
    assert list(full["config_id"]) == list(same["config_id"])
    assert list(full["image_auroc"]) == list(same["image_auroc"])


def test_the_configuration_id_ignores_where_a_run_runs_but_not_what_it_computes():
    cfg = get_config("smoke")
    assert config_id(cfg) == config_id(cfg.replace(device="cpu", num_workers=2))
    assert config_id(cfg) != config_id(cfg.replace(seed=1))
    assert config_id(cfg) != config_id(cfg.replace(backbone="efficientnet_lite1"))


def test_a_failed_run_keeps_the_others_and_runs_again_next_time(root, tmp_path, monkeypatch):
    fit = ulsad.train.fit

    def fails_on_seed_1(train, val, cfg, **kw):
        if cfg.seed == 1:
            raise RuntimeError("out of memory")
        return fit(train, val, cfg, **kw)

    monkeypatch.setattr(ulsad.train, "fit", fails_on_seed_1)
    with pytest.raises(RuntimeError, match="1 of 2 runs failed.*out of memory"):
        reproduce("synthetic", root, ["pegboard"], seeds=2, out=tmp_path, **SMOKE)
    assert load_runs(tmp_path)["seed"].tolist() == [0]
    monkeypatch.setattr(ulsad.train, "fit", fit)
    assert sorted(reproduce("synthetic", root, ["pegboard"], seeds=2, out=tmp_path, **SMOKE)["seed"]) == [0, 1]


def test_a_bad_variant_fails_before_any_training(root, tmp_path, no_fit):
    with pytest.raises(ValueError, match="unknown variant"):
        reproduce("synthetic", root, ["pegboard"], variants=["full", "nonsense"], out=tmp_path, **SMOKE)
    assert not (tmp_path / "runs.csv").exists()


def test_ray_runs_each_run_as_a_task(root, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        runs = reproduce("synthetic", root, ["pegboard"], seeds=2, out=tmp_path, executor="ray", **SMOKE)
    finally:
        ray.shutdown()
    assert sorted(runs["seed"]) == [0, 1] and runs["image_auroc"].between(0, 1).all()
    assert len(load_runs(tmp_path)) == 2 and (tmp_path / "summary_by_category.md").is_file()


def test_cli_reproduce_resumes_and_prints_the_summary(sweep, root, tmp_path, no_fit, capsys):
    _, out = sweep
    shutil.copytree(out, tmp_path / "cli")
    code = main(["reproduce", "--dataset", "synthetic", "--root", str(root), "--categories", "pegboard",
                 "--seeds", "2", "--variant", "full", "local_vd", "--profile", "smoke", "--set", "weights=random",
                 "--set", "epochs=1", "--out", str(tmp_path / "cli")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "4 runs" in printed and "Our runs, not the paper's" in printed


def test_the_paper_value_of_each_kind_of_run():
    assert paper_value("mvtec_loco", "breakfast_box", "full", "image_auroc") == (83.54, 0.23, "Table 9")
    assert paper_value("mvtec_loco", None, "full", "image_auroc") == (84.1, 0.86, "Table 1")
    assert paper_value("mvtec_loco", None, "full", "aupro")[::2] == (73.73, "Table 2")
    assert paper_value("btad", "01", "full", "pixel_auroc")[2] == "Table 16"
    assert paper_value("mvtec_loco", None, "v_pgd", "image_auroc")[::2] == (77.69, "Table 3")
    assert paper_value("mvtec_loco", "breakfast_box", "v_pgd", "image_auroc")[::2] == (77.29, "Table 22")
    assert paper_value("mvtec_loco", "pushpins", "local_v", "image_auroc")[::2] == (72.4, "Table 21")
    assert paper_value("mvtec_loco", "juice_bottle", "backbone-resnet50", "aupro")[::2] == (89.38, "Table 23")
    assert paper_value("mvtec_loco", "breakfast_box", "lambda_l-0.01", "image_auroc")[::2] == (79.2, "Table 21")
    assert paper_value("mvtec_loco", "breakfast_box", "lambda_l-1.0", "aupro")[::2] == (65.36, "Table 21")
    assert paper_value("mvtec_ad", "bottle", "v_pgd", "image_auroc") is None  # Table 3 is LOCO only
    assert paper_value("synthetic", "pegboard", "full", "image_auroc") is None
    assert paper_value("mvtec_loco", "pushpins", "full", "spro") is None  # the paper reports no sPRO
    assert paper_value("mvtec_loco", None, "backbone-resnet50", "image_auroc") is None  # Fig. 8 is a figure


def test_each_table3_variant_is_the_configuration_of_its_row():
    rows = paper.table(3)
    assert [v.table3_row for v in TABLE3] == list(range(1, 11))
    for row in TABLE3:
        variant = row.name
        cfg, printed = get_config("paper", variant), rows.loc[row.table3_row]
        assert cfg.lambda_l == printed["λ_l"], variant
        if cfg.has_global_branch:
            assert cfg.lambda_g == printed["λ_g"], variant
        else:
            assert np.isnan(printed["λ_g"]), variant
        assert cfg.use_lg == printed["L_lg"], variant
        assert (cfg.global_loss == "pg_direct") == printed["L_pg^d"], variant
        assert (cfg.global_loss == "pg") == printed["L_pg"], variant


def loco_runs(categories, seeds=(0, 1)):
    """Made-up runs of ULSAD on MVTec LOCO: the summaries' arithmetic without training."""
    rows = [dict(dataset="mvtec_loco", category=c, variant="full", profile="paper", overrides="{}", seed=s,
                 data="mvtec_loco (real)", weights="imagenet", backbone="wide_resnet50_2", image_size=256,
                 epochs=200, image_auroc=0.80 + 0.01 * s, aupro=0.7) for c in categories for s in seeds]
    return pd.DataFrame(rows)


def test_a_real_dataset_is_summarised_beside_the_paper():
    summary = summarize(loco_runs(data.DATASETS["mvtec_loco"]))
    row = summary["category"].query("category == 'pushpins' and metric == 'image_auroc'").iloc[0]
    assert (row["paper"], row["paper_std"], row["paper_source"]) == (86.85, 0.94, "Table 9")
    assert row["mean"] == pytest.approx(80.5) and row["difference"] == pytest.approx(80.5 - 86.85)
    assert "mvtec_loco (real)" in row["provenance"] and "ImageNet (timm) weights" in row["provenance"]
    whole = summary["dataset"].query("metric == 'image_auroc'").iloc[0]
    assert (whole["paper"], whole["paper_source"], whole["n_categories"]) == (84.1, "Table 1", 5)
    assert whole["mean"] == pytest.approx(80.5) and whole["std"] == pytest.approx(np.std([80, 81], ddof=1))


def test_the_dataset_level_is_compared_only_when_every_category_ran():
    summary = summarize(loco_runs(["pushpins", "screw_bag"]))
    assert summary["category"]["paper"].notna().all()
    assert summary["dataset"]["paper"].isna().all() and set(summary["dataset"]["n_categories"]) == {2}


# -- a damaged runs.csv, and Ctrl-C: one line saying what is kept and how to go on -----------------------

@pytest.mark.parametrize("cut", ["inside the quoted config", "after a comma", "three characters short"])
def test_a_torn_runs_csv_is_named_with_how_to_keep_its_complete_runs(sweep, root, tmp_path, no_fit, cut):
    _, out = sweep
    shutil.copytree(out, tmp_path / "torn")
    runs_csv = tmp_path / "torn" / "runs.csv"
    text = runs_csv.read_text()
    line5 = text.rstrip("\n").rindex("\n") + 1  # the header, then four runs
    end = {"inside the quoted config": text.index('"{', line5) + 20, "after a comma": text.index(",", line5) + 1,
           "three characters short": len(text) - 3}[cut]
    runs_csv.write_text(text[:end])
    with pytest.raises(ValueError) as e:
        reproduce("synthetic", root, ["pegboard"], seeds=2, variants=["full", "local_vd"],
                  out=tmp_path / "torn", **SMOKE)
    assert str(e.value) == (f"{runs_csv} is damaged from line 5 on (a row cut short, e.g. by a full disk or an "
                            f"interrupted copy): lines 2-4 are complete runs: delete line 5 and after to keep them, "
                            f"or move the file away to start again")
    runs_csv.write_text("".join(text.splitlines(keepends=True)[:4]))  # as the message says
    assert len(load_runs(tmp_path / "torn")) == 3


def test_a_runs_csv_torn_in_its_header_says_to_move_it_away(tmp_path):
    (tmp_path / "runs.csv").write_text('dataset,category,"conf')
    with pytest.raises(ValueError, match=r"runs.csv is damaged from line 1 on .*: move the file away to start again$"):
        load_runs(tmp_path)


def test_ctrl_c_during_reproduce_keeps_the_finished_runs_says_so_and_exits_130(root, tmp_path, monkeypatch, capsys):
    from ulsad.reproduce import run_one

    started = []

    def interrupted_after_the_first(run):
        if started:
            raise KeyboardInterrupt
        started.append(run)
        return run_one(run)

    monkeypatch.setattr("ulsad.reproduce.run_one", interrupted_after_the_first)
    args = ["reproduce", "--dataset", "synthetic", "--root", str(root), "--categories", "pegboard", "--seeds", "2",
            "--profile", "smoke", "--set", "weights=random", "--set", "epochs=1", "--out", str(tmp_path)]
    assert main(args) == 130
    assert capsys.readouterr().err == (f"interrupted: 1 of the 2 runs to do finished and are in "
                                       f"{tmp_path / 'runs.csv'}; rerun the same command to resume\n")
    assert load_runs(tmp_path)["seed"].tolist() == [0]
    monkeypatch.setattr("ulsad.reproduce.run_one", run_one)
    assert main(args) == 0 and sorted(load_runs(tmp_path)["seed"]) == [0, 1]


def test_runs_of_several_categories_under_one_name_are_each_kept_and_reused(tmp_path, monkeypatch):
    """The same variant on two categories is two runs: rerunning reuses both and supersedes neither."""
    import json

    import ulsad.reproduce as runner

    made = []

    def fake_run(run):
        made.append(run.category)
        return {**run.identity(), **run.labels(), "data": "SYNTHETIC", "root": run.root, "weights": "random",
                "backbone": "efficientnet_lite0", "image_size": 64, "epochs": 1, "device": "cpu",
                "config": json.dumps(run.config().to_dict(), sort_keys=True), "wall_s": 0.0, "image_auroc": 0.5}

    monkeypatch.setattr(runner, "run_one", fake_run)
    monkeypatch.setattr(runner, "check_inputs", lambda runs: None)  # made-up categories: no images to check
    for _ in range(2):
        runs = reproduce("synthetic", "data", ["a", "b"], seeds=1, out=tmp_path, **SMOKE)
        assert sorted(runs["category"]) == ["a", "b"]
    assert made == ["a", "b"]
    assert not (tmp_path / "superseded.csv").exists() and len(load_runs(tmp_path)) == 2


def test_the_source_commit_is_this_checkout_s_head_and_says_when_the_code_differs_from_it():
    import re
    import subprocess

    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent)
    if head.returncode != 0:
        assert source_commit() == "not a git checkout"
    else:
        assert re.fullmatch(head.stdout.strip() + r"(\+dirty)?", source_commit())


def test_runs_on_images_of_another_generator_are_made_again_and_kept_aside(sweep, root, tmp_path, counted_fit,
                                                                           monkeypatch):
    _, out = sweep
    assert set(load_runs(out)["data_version"]) == {f"synthetic-v{data.synth.GENERATOR_VERSION} (16/8/24 images)"}
    shutil.copytree(out, tmp_path / "redrawn")
    shutil.copytree(root, tmp_path / "images")
    monkeypatch.setattr(data.synth, "GENERATOR_VERSION", data.synth.GENERATOR_VERSION + 1)
    data.synth.generate(tmp_path / "images", ["pegboard"], image_size=64, n_train=16, n_val=8, n_test=24)
    runs = reproduce("synthetic", tmp_path / "images", ["pegboard"], seeds=1, variants=["full"],
                     out=tmp_path / "redrawn", **SMOKE)
    assert counted_fit == [0]
    assert set(runs["data_version"]) == {f"synthetic-v{data.synth.GENERATOR_VERSION} (16/8/24 images)"}
    superseded = pd.read_csv(tmp_path / "redrawn" / "superseded.csv")
    assert list(superseded["data_version"]) == [f"synthetic-v{data.synth.GENERATOR_VERSION - 1} (16/8/24 images)"]


def test_runs_on_a_test_set_of_another_size_are_made_again(sweep, root, tmp_path, counted_fit):
    """The same generator drawing more test images makes other numbers: a run on 24 test images is not one on 30."""
    _, out = sweep
    shutil.copytree(out, tmp_path / "more")
    data.synth.generate(tmp_path / "images", ["pegboard"], image_size=64, n_train=16, n_val=8, n_test=30)
    runs = reproduce("synthetic", tmp_path / "images", ["pegboard"], seeds=1, variants=["full"],
                     out=tmp_path / "more", **SMOKE)
    assert counted_fit == [0]
    assert set(runs["data_version"]) == {f"synthetic-v{data.synth.GENERATOR_VERSION} (16/8/30 images)"}
    assert int(runs["n_test"].iloc[0]) == 30


# -- hostile inputs: found before any training, or named by file, line and column ---------------------------

@pytest.fixture
def tiny(tmp_path):
    """A category of a few 64 px images, drawn in a tenth of a second."""
    return data.synth.generate(tmp_path / "images", ["pegboard"], image_size=64, n_train=4, n_val=2, n_test=6)


@pytest.mark.parametrize("damage", ["a test mask of another size", "a test image that is no image",
                                    "a validation image that is no image"])
def test_every_image_and_mask_of_the_three_splits_is_checked_before_any_training(tiny, tmp_path, no_fit, damage):
    category = tiny / "pegboard"
    mask = sorted((category / "ground_truth" / "structural_anomalies").glob("*/*.png"))[0]
    bad = {"a test mask of another size": mask, "a test image that is no image": category / "test" / "good" / "001.png",
           "a validation image that is no image": category / "validation" / "good" / "001.png"}[damage]
    if bad == mask:
        Image.open(mask).resize((32, 32)).save(mask)
        expected = (f"{mask}: mask of 32x32 pixels for the image {category / 'test' / 'structural_anomalies' / mask.parent.name}"
                    f".png of 64x64 pixels; expected a mask the size of its image")
    else:
        bad.write_bytes(b"not an image")
        expected = f"{bad}: cannot read this image"
    with pytest.raises(data.DataError) as e:
        reproduce("synthetic", tiny, ["pegboard"], seeds=2, out=tmp_path / "out", **SMOKE)
    assert str(e.value).startswith(expected)
    assert not (tmp_path / "out" / "runs.csv").exists()


def test_a_root_whose_name_is_not_utf8_is_kept_in_runs_csv_as_the_file_system_gives_it(tmp_path, monkeypatch):
    root = data.synth.generate(tmp_path / os.fsdecode(b"images\xff"), ["pegboard"], image_size=64,
                               n_train=4, n_val=2, n_test=6)
    reproduce("synthetic", root, ["pegboard"], out=tmp_path / "out", **SMOKE)
    assert load_runs(tmp_path / "out")["root"].tolist() == [str(root)]
    assert sorted(os.listdir(tmp_path / "out")) == ["runs.csv", "summary_by_category.csv", "summary_by_category.md",
                                                    "summary_by_dataset.csv", "summary_by_dataset.md"]
    monkeypatch.setattr(ulsad.train, "fit", lambda *a, **k: pytest.fail("the run was made: nothing should be trained"))
    assert len(reproduce("synthetic", root, ["pegboard"], out=tmp_path / "out", **SMOKE)) == 1


def test_a_row_that_cannot_be_written_names_its_run_and_file_and_leaves_no_part_file(tiny, tmp_path, monkeypatch):
    import ulsad.reproduce as runner

    def fake_run(run):
        return {**run.identity(), **run.labels(), "root": run.root, "config": "{}", "wall_s": 0.0,
                "image_auroc": 0.5, "weights": "random"}

    def full_disk(table, path, *args, **kwargs):
        Path(path).write_text("dataset,categ")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner, "run_one", fake_run)
    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    with pytest.raises(RuntimeError) as e:
        reproduce("synthetic", tiny, ["pegboard"], out=tmp_path / "out", **SMOKE)
    assert str(e.value) == (f"[1/1] pegboard full seed 0 was made, but its row could not be written to "
                            f"{tmp_path / 'out' / 'runs.csv'} ([Errno 28] No space left on device); that file is left "
                            f"as it was before this run: rerun to make it again")
    assert os.listdir(tmp_path / "out") == []


def _edit_cell(runs_csv: Path, line: int, column: str, value: str) -> None:
    """Set one cell of runs.csv, leaving every other byte as the runner wrote it."""
    with open(runs_csv, newline="") as f:
        rows = list(csv.reader(f))
    rows[line - 1][rows[0].index(column)] = value
    with open(runs_csv, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def test_a_metric_cell_that_is_no_number_is_named_by_file_line_and_column(sweep, root, tmp_path, no_fit):
    _, out = sweep
    shutil.copytree(out, tmp_path / "text")
    runs_csv = tmp_path / "text" / "runs.csv"
    _edit_cell(runs_csv, 3, "image_auroc", "abc")
    with pytest.raises(ValueError) as e:
        reproduce("synthetic", root, ["pegboard"], seeds=2, variants=["full", "local_vd"], out=tmp_path / "text",
                  **SMOKE)
    assert str(e.value) == (f"{runs_csv}, line 3, column image_auroc: 'abc' is not a number; expected a number, "
                            f"or nothing where it is undefined: correct the cell, or delete the line to "
                            f"make its run again")


@pytest.mark.parametrize("config_id", ["kept", "empty (a row older than config_id)"])
def test_a_config_cell_that_is_no_configuration_is_named_by_file_line_and_column(sweep, root, tmp_path, no_fit,
                                                                                 config_id):
    _, out = sweep
    shutil.copytree(out, tmp_path / "garbled")
    runs_csv = tmp_path / "garbled" / "runs.csv"
    _edit_cell(runs_csv, 4, "config", "{garbled")
    if config_id != "kept":
        _edit_cell(runs_csv, 4, "config_id", "")
    with pytest.raises(ValueError) as e:
        reproduce("synthetic", root, ["pegboard"], seeds=2, variants=["full", "local_vd"], out=tmp_path / "garbled",
                  **SMOKE)
    assert str(e.value).startswith(f"{runs_csv}, line 4, column config: not a configuration (Expecting property name "
                                   f"enclosed in double quotes: line 1 column 2 (char 1)); expected ")


def test_an_unreachable_ray_cluster_is_one_line_naming_its_address_within_seconds(tiny, tmp_path, monkeypatch,
                                                                                   capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setitem(sys.modules, "ray", None)  # the address is checked before Ray is imported, let alone started
    start = time.monotonic()
    code = main(["reproduce", "--root", str(tiny), "--categories", "pegboard", "--profile", "smoke",
                 "--out", str(tmp_path / "out"), "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"])
    assert code == 2 and time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert err.startswith(f"error: no Ray cluster answers at 127.0.0.1:{port} (") and err.count("\n") == 1
