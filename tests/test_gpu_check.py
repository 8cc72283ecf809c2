"""benchmarks/gpu_check.py: one line without CUDA, the whole check tiny on the CPU, its agreement rule, bad settings."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(SCRIPT.parent))
import gpu_check as script  # noqa: E402

from ulsad import data  # noqa: E402
from ulsad.backbone import WeightsUnavailable  # noqa: E402


def run_script(args, cwd: Path, timeout: float):
    """The script as a reader runs it, from a scratch folder, its temporary files kept under cwd/tmp."""
    (cwd / "tmp").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TMPDIR": str(cwd / "tmp"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs the whole check")
def test_without_cuda_it_prints_one_line_and_exits_0(tmp_path):
    out = run_script([], tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0] and "--device cpu --smoke" in lines[0]
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One `--device cpu --smoke` run: seconds on two cores (the paper architecture at 64 px, random θ)."""
    folder = tmp_path_factory.mktemp("gpu-check")
    out = run_script(["--device", "cpu", "--smoke", "--json", str(folder / "report" / "check.json")],
                     folder, timeout=300)
    return folder, out


def test_the_cpu_smoke_run_goes_through_every_step_and_exits_0(smoke_run):
    _, out = smoke_run
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("device  cpu") and f"torch   {torch.__version__}" in text
    assert "1. Speed: paper architecture (wide_resnet50_2, c*=384, 64 px)" in text
    assert "RANDOMLY INITIALISED" in text and "timings only" in text  # random θ is never passed off as real
    assert "2. Scores: efficientnet_lite0, ImageNet (" in text
    # the two GPU-only comparisons say why they did not run
    assert "skipped: bfloat16" in text and "skipped: CPU vs GPU" in text


def test_the_smoke_json_holds_every_figure_finite_and_nothing_else_is_left(smoke_run):
    folder, out = smoke_run
    assert out.returncode == 0, out.stderr
    report = json.loads((folder / "report" / "check.json").read_text())
    assert report["device"] == "cpu" and report["torch"] == torch.__version__ and report["passed"] is True
    assert report["paper"]["weights"] == "random" and report["paper"]["backbone"] == "wide_resnet50_2"
    run = report["paper"]["runs"]["float32"]
    assert "bf16" not in report["paper"]["runs"]  # autocast is CUDA-only: no second row on the CPU
    for key in ("seconds_per_epoch", "train_images_per_s", "inference_images_per_s", "fit_seconds"):
        assert math.isfinite(run[key]) and run[key] > 0, key
    assert run["peak_train_mib"] is None and run["peak_inference_mib"] is None  # CUDA's counter only
    scores = report["scores"]
    assert scores["weights"].startswith("ImageNet") and "bf16" not in scores
    for key in script.METRICS:
        assert 0 <= scores["float32"][key] <= 1, key
    assert report["checks"] == {} and len(report["skipped"]) == 2
    assert report["data"]["n_test"] == script.SMOKE["counts"][2]
    # the images and the checkpoint went to a temporary folder that is gone; only the report is left
    assert sorted(p.name for p in folder.iterdir()) == ["report", "tmp"]
    assert list((folder / "tmp").iterdir()) == []


def test_a_failed_agreement_check_prints_fail_and_makes_the_exit_status_1(smoke_run, tmp_path, monkeypatch, capsys):
    folder, _ = smoke_run
    report = json.loads((folder / "report" / "check.json").read_text())  # a real report, given what a GPU adds
    scores, metrics = np.array([0.1, 0.2, 0.3]), {k: 0.5 for k in script.METRICS}
    report["scores"]["bf16"] = report["scores"]["float32"]
    report["checks"] = {
        "bf16_vs_float32": script.agreement("bf16_vs_float32", (scores, metrics), (scores + 1e-3, metrics)),
        "cpu_vs_gpu": {"n_images": 3, **script.agreement("cpu_vs_gpu", (scores, metrics), (scores + 1e-2, metrics))},
    }
    report["passed"] = False
    monkeypatch.setattr(script, "run", lambda *args: report)
    assert script.main(["--device", "cpu", "--smoke", "--json", str(tmp_path / "check.json")]) == 1
    out = capsys.readouterr().out
    assert "bf16 vs float32: max |Δ image score| 1.00e-03 (tolerance 0.03)" in out
    assert "CPU vs GPU (float32) on 3 test images: max |Δ image score| 1.00e-02 (tolerance 0.001)" in out
    assert out.count("-> PASS") == 1 and out.count("-> FAIL") == 1 and "AN AGREEMENT CHECK FAILED" in out
    assert json.loads((tmp_path / "check.json").read_text())["passed"] is False


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 64 px category (2 normal, 2 logical, 2 structural test images) and a smoke detector saved for it."""
    root = data.synth.generate(tmp_path_factory.mktemp("synthetic"), ["pin_tray"], image_size=64,
                               n_train=4, n_val=2, n_test=6)
    return data.load("synthetic", root, "pin_tray", "test", image_size=64)


def test_the_same_checkpoint_twice_agrees_exactly_and_a_moved_score_fails(tiny, trained, tmp_path):
    path = trained[0].save(tmp_path / "smoke.ckpt")
    few = script.subset(tiny, 4)
    assert sorted(few.labels) == [0, 1, 1, 1]  # the test set's proportions, both classes
    defaults = script.tf32_default()
    first = script.scores_of(path, few, torch.device("cpu"), amp=False)
    again = script.scores_of(path, few, torch.device("cpu"), amp=False)
    assert script.tf32_default() == defaults  # float32 scoring turns TF32 off only while it runs
    same = script.agreement("cpu_vs_gpu", first, again)
    assert same["passed"] and same["max_abs_image_score_diff"] == 0 and same["max_abs_metric_diff"] == 0
    score_tolerance, _ = script.TOLERANCES["cpu_vs_gpu"]
    moved = (first[0] + 2 * score_tolerance * (np.arange(len(first[0])) == 0), first[1])
    assert not script.agreement("cpu_vs_gpu", moved, first)["passed"]


def test_unavailable_imagenet_weights_fall_back_to_random_theta_and_say_why(monkeypatch):
    from ulsad.backbone import WeightsUnavailable, how_to_provide_weights

    def no_weights(*args, **kwargs):
        raise WeightsUnavailable(how_to_provide_weights("wide_resnet50_2"))

    monkeypatch.setattr(script, "create_body", no_weights)
    cfg, source, why = script.paper_weights(script.get_config("paper", image_size=64))
    assert source == "random" and cfg.weights == "random" and cfg.allow_random_weights
    assert why.startswith("no ImageNet weights for 'wide_resnet50_2' could be loaded; put them at ")


def test_a_data_folder_is_reused_when_its_images_were_made_with_the_same_settings(tmp_path):
    _, args = script.parse_args(["--device", "cpu", "--smoke", "--data", str(tmp_path)])
    first = script.synthetic_data(args, tmp_path)[1]
    again = script.synthetic_data(args, tmp_path)[1]
    assert not first["reused"] and again["reused"]
    args.counts = [10, 4, 6]
    assert not script.synthetic_data(args, tmp_path)[1]["reused"]


@pytest.mark.parametrize("args, named", [
    (["--counts", "1", "1", "3"], "--counts 1 1 3"),
    (["--cpu-images", "100"], "--cpu-images 100"),
    (["--epochs", "0"], "--epochs 0"),
    (["--image-size", "100"], "--image-size 100"),
    (["--device", "mps"], "--device mps"),
    (["--device", "nonsense"], "--device nonsense"),
    (["--json", "{tmp}/a-file/out.json"], "--json"),  # its folder would be a file
    (["--json", "{tmp}"], "--json"),  # a folder, not a file name
    (["--data", "{tmp}/a-file"], "--data"),
    (["--data", "{tmp}/foreign"], "--data"),  # holds a category the generator did not make
])
def test_a_setting_that_cannot_work_stops_before_any_work_naming_the_parameter(args, named, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    foreign = tmp_path / "foreign" / script.CATEGORY
    foreign.mkdir(parents=True)
    with pytest.raises(SystemExit) as stop:
        script.main(["--device", "cpu", "--smoke", *(a.format(tmp=tmp_path) for a in args)])
    assert stop.value.code == 2 and named in capsys.readouterr().err
    assert foreign.is_dir() and list(foreign.iterdir()) == []  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "foreign"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_is_an_error_naming_the_device(capsys):
    with pytest.raises(SystemExit) as stop:
        script.main(["--device", "cuda", "--smoke"])
    assert stop.value.code == 2 and "--device cuda: CUDA is not available" in capsys.readouterr().err
