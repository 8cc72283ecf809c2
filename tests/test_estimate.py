"""Time estimates said before training, and what a chapter does with them."""
import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ulsad import estimate, get_config
from ulsad.book import session as book_session

ROOT = Path(__file__).resolve().parents[1]


def test_speeds_csv_is_what_the_committed_runs_measure():
    machine = {row["machine"] for row in estimate.measured_speeds()}
    assert len(machine) == 1
    done = subprocess.run([sys.executable, "benchmarks/speeds.py", "--machine", machine.pop(), "--check"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_measured_setting_is_looked_up_and_says_where_it_comes_from():
    demo = get_config("demo")
    with (ROOT / "ulsad" / "speeds.csv").open() as f:
        row = next(r for r in csv.DictReader(f) if (r["device"], r["backbone"], r["image_size"], r["c_star"])
                   == ("cpu", demo.backbone, str(demo.image_size), str(demo.c_star)))
    found = estimate.lookup(demo, "cpu")
    assert found.seconds == float(row["seconds_per_image_epoch"])
    assert f"median of {row['runs']} committed runs on {row['machine']}" in str(found)


def test_an_unmeasured_device_gives_no_number_and_says_so():
    found = estimate.seconds_per_image_epoch(get_config("gpu"), "cuda", torch.device("cpu"))
    assert found.seconds is None
    assert str(found) == "time unknown (no measured speed of wide_resnet50_2 at 256 px, c*=384 on cuda)"
    assert estimate.training_time(get_config("gpu"), 200, 36, found) == found


def test_a_setting_the_table_lacks_is_timed_on_the_device_at_hand_once():
    smoke = get_config("smoke")
    assert estimate.lookup(smoke, "cpu").seconds is None
    timed = estimate.seconds_per_image_epoch(smoke, "cpu", torch.device("cpu"))
    assert 0 < timed.seconds < 10 and "training steps timed now on cpu" in timed.source
    assert estimate.seconds_per_image_epoch(smoke, "cpu", torch.device("cpu")) is timed


def test_training_time_is_fits_times_image_epochs_times_the_speed():
    speed = estimate.Estimate(0.05, "measured")
    total = estimate.training_time(get_config("demo"), 100, 36, speed)
    assert math.isclose(total.seconds, 36 * 30 * 100 * 0.05) and total.source == "measured"
    assert str(total) == "about 1.5 h (measured)"


@pytest.fixture
def book_home(tmp_path, monkeypatch):
    """A working folder whose committed `demo` results hold 10 ULSAD fits and 4 baseline fits."""
    monkeypatch.setenv("ULSAD_HOME", str(tmp_path))
    for name, rows in (("main/runs.csv", 10), ("baselines/baselines.csv", 4)):
        path = tmp_path / "results" / "synthetic-demo" / name
        path.parent.mkdir(parents=True)
        path.write_text("header\n" + "row\n" * rows)
    monkeypatch.delenv("ULSAD_RECOMPUTE", raising=False)
    monkeypatch.delenv("ULSAD_PLAN_DEVICE", raising=False)
    return tmp_path


def at_speed(monkeypatch, seconds):
    monkeypatch.setattr(estimate, "seconds_per_image_epoch",
                        lambda config, kind, device=None: estimate.Estimate(seconds, f"a test speed on {kind}"))


def test_a_chapter_whose_fits_are_short_trains_them_in_its_profile(book_home, monkeypatch):
    at_speed(monkeypatch, 1e-3)  # 14 fits x 2 epochs x 16 images: under a second
    profile, lines = book_session.plan("smoke", ("main", "baselines"), torch.device("cpu"))
    assert profile == "smoke"
    assert lines == ["this chapter's results in profile 'smoke': 14 fits (2 epochs x 16 images each, a baseline's "
                     "counted as ULSAD's) on cpu, about 0 s (a test speed on cpu)"]


def test_a_chapter_whose_fits_are_long_shows_the_committed_results_unless_asked_to_recompute(book_home,
                                                                                             monkeypatch):
    at_speed(monkeypatch, 0.05)  # 10 fits x 60 epochs x 200 images: 100 min, 1.7 h
    profile, lines = book_session.plan("gpu", ("main",), torch.device("cpu"))
    assert profile == "demo"
    assert "10 fits" in lines[0] and "about 1.7 h" in lines[0]
    assert lines[1].startswith("more than 10 min: this chapter shows the committed results of profile 'demo'")
    assert "ULSAD_RECOMPUTE=1" in lines[1]
    monkeypatch.setenv("ULSAD_RECOMPUTE", "1")
    profile, lines = book_session.plan("gpu", ("main",), torch.device("cpu"))
    assert profile == "gpu" and lines[-1] == "ULSAD_RECOMPUTE is set: training them"


def test_an_unknown_time_counts_as_too_long_and_the_device_planned_for_can_be_named(book_home, monkeypatch):
    monkeypatch.setenv("ULSAD_PLAN_DEVICE", "cuda")  # planning a GPU reader's chapter on a machine without one
    profile, lines = book_session.plan("gpu", ("main",), torch.device("cpu"))
    assert profile == "demo"
    assert lines[0].endswith("on cuda, time unknown (no measured speed of wide_resnet50_2 at 256 px, "
                             "c*=384 on cuda)")
    assert lines[1].startswith("time unknown: this chapter shows the committed results")


def test_the_committed_profile_and_fits_already_made_need_no_plan(book_home, monkeypatch):
    at_speed(monkeypatch, 1.0)
    assert book_session.plan("demo", ("main",), torch.device("cpu")) == ("demo", [])
    made = book_home / "results" / "synthetic-gpu" / "main" / "runs.csv"
    made.parent.mkdir(parents=True)
    made.write_text("header\n" + "row\n" * 10)
    assert book_session.plan("gpu", ("main",), torch.device("cpu")) == ("gpu", [])
