"""benchmarks/synth_difficulty.py: training-free scorers on a tiny generated category."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import synth_difficulty as sd  # noqa: E402

from ulsad import data  # noqa: E402

SIZE = 64
CATEGORY = "pegboard"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One category, 64 px, 6 train / 8 test images (2 good, 3 logical, 3 structural), and θ."""
    root = data.synth.generate(tmp_path_factory.mktemp("synthetic"), [CATEGORY], seed=0, image_size=SIZE,
                               n_train=6, n_val=1, n_test=8)
    return root, sd.feature_extractor()


def test_each_scorer_gives_one_finite_score_per_test_image(tiny):
    root, extractor = tiny
    train = data.stack_images(data.load("synthetic", root, CATEGORY, "train", image_size=SIZE))
    test = data.stack_images(data.load("synthetic", root, CATEGORY, "test", image_size=SIZE))
    train_f, test_f = sd.features(extractor, train), sd.features(extractor, test)
    assert train_f.shape == (6, sd.CHANNELS, SIZE // 8, SIZE // 8)
    scores = sd.detector_scores(train, train_f, test, test_f)
    assert list(scores) == list(sd.DETECTORS)
    for detector in scores.values():
        assert detector.shape == (8,) and np.isfinite(detector).all()


def test_a_training_image_scores_exactly_zero_against_a_bank_that_holds_it(tiny):
    root, extractor = tiny
    train = data.stack_images(data.load("synthetic", root, CATEGORY, "train", image_size=SIZE))
    train_f = sd.features(extractor, train)
    assert (sd.patch_memory_scores(train_f, train_f) == 0).all()
    assert (sd.whole_image_scores(train_f, train_f) == 0).all()
    for grid in sd.LAYOUT_GRIDS:
        assert (sd.layout_scores(train_f, train_f, grid) == 0).all()
    assert (sd.worst_cell_scores(train_f, train_f) == 0).all()
    assert (sd.patch_memory_scores(train_f[1:], train_f[:1]) > 0).all()  # and not when it is left out


def test_nearest_distances_is_exact_across_chunks():
    g = torch.Generator().manual_seed(0)
    queries, bank = torch.randn(50, 7, generator=g), torch.randn(40, 7, generator=g)
    expected = torch.cdist(queries, bank, compute_mode="donot_use_mm_for_euclid_dist").amin(1)
    torch.testing.assert_close(sd.nearest_distances(queries, bank, chunk=16), expected)


def test_the_table_has_one_row_per_category_and_type_then_one_per_rule(tiny, tmp_path):
    root, extractor = tiny
    rows = sd.category_rows(root, CATEGORY, extractor, SIZE, seconds=1.0, seed=0)
    assert [(r["category"], r["type"]) for r in rows] == [(CATEGORY, "logical"), (CATEGORY, "structural"),
                                                          (CATEGORY, "logical: mismatch")]
    assert all(0 <= r[name] <= 1 for r in rows for name in sd.DETECTORS)
    table = sd.markdown_table(rows).splitlines()
    assert table[0] == ("| category | type | mean colour | patch memory | patch memory 3x3 | whole image "
                        "| layout 2x2 | layout 4x4 | layout 4x4 worst cell | generation s |")
    assert len(table) == 2 + len(rows) and table[2].startswith(f"| {CATEGORY} | logical | ")


def test_neighbourhoods_average_each_feature_with_its_3x3_neighbours():
    f = torch.zeros(1, 1, 5, 5)
    f[0, 0, 2, 2] = 9.0
    pooled = sd.neighbourhoods(f)
    assert pooled.shape == f.shape
    assert pooled[0, 0, 1:4, 1:4].eq(1.0).all() and pooled[0, 0, 0].eq(0).all()
    assert sd.neighbourhoods(torch.ones(1, 2, 4, 4)).eq(1).all()  # borders: the mean of what is there


def test_a_layout_knows_where_things_are_and_its_worst_cell_finds_one_changed_part():
    """Two images holding the same parts in swapped places: one pooled descriptor, two layouts."""
    f = torch.zeros(2, 1, 4, 4)
    f[0, 0, 0, 0], f[1, 0, 3, 3] = 1.0, 1.0
    assert sd.whole_image_scores(f[:1], f[1:]) == 0
    assert sd.layout_scores(f[:1], f[1:], 2) > 0
    changed = f.clone()
    changed[:, 0, 2, 0] += 4.0  # one part of each image changes: its cell, not the whole layout
    assert sd.worst_cell_scores(f, changed).tolist() == [4.0, 4.0]  # each against itself, unchanged
