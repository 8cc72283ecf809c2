"""ulsad.paper: every table loads, and the tables agree with each other except for exactly the listed errata."""
from importlib import resources

import numpy as np
import pytest

from ulsad import paper

SHAPES = {1: (9, 5), 2: (9, 10), 3: (11, 8), 21: (6, 15), 22: (12, 12), 23: (5, 15)}
# Appendix B: (dataset, metric) of each per-category table, and its number of rows (categories + Mean).
APPENDIX = {
    6: ("MVTec", "I-AUROC"), 7: ("MVTec", "P-AUROC"), 8: ("MVTec", "P-AUPRO"),
    9: ("MVTec-LOCO", "I-AUROC"), 10: ("MVTec-LOCO", "P-AUROC"), 11: ("MVTec-LOCO", "P-AUPRO"),
    12: ("MPDD", "I-AUROC"), 13: ("MPDD", "P-AUROC"), 14: ("MPDD", "P-AUPRO"),
    15: ("BTAD", "I-AUROC"), 16: ("BTAD", "P-AUROC"), 17: ("BTAD", "P-AUPRO"),
    18: ("VisA", "I-AUROC"), 19: ("VisA", "P-AUROC"), 20: ("VisA", "P-AUPRO"),
}
PER_CATEGORY_LOCO = {"I-AUROC": 9, "P-AUROC": 10, "P-AUPRO": 11}
ROWS = {"MVTec": 16, "MVTec-LOCO": 6, "MPDD": 7, "BTAD": 4, "VisA": 13}
CAPTION_WORDS = {"MVTec": "on MVTec dataset", "MVTec-LOCO": "MVTecLOCO", "MPDD": "MPDD", "BTAD": "BTAD",
                 "VisA": "VisA", "I-AUROC": "Image AUROC", "P-AUROC": "Pixel AUROC", "P-AUPRO": "AUPRO"}
# Printed values are rounded to 0.01 (a few to 0.1): a mean recomputed from them may drift by about 0.01-0.02.
TOLERANCE = 0.02


def test_every_table_loads_with_its_shape():
    assert paper.TABLES == (1, 2, 3, *range(6, 24))
    for n in paper.TABLES:
        values, stds = paper.table(n), paper.table(n, std=True)
        expected = SHAPES.get(n) or (ROWS[APPENDIX[n][0]], 9)
        assert values.shape == stds.shape == expected, n
        assert values.index.equals(stds.index) and values.columns.equals(stds.columns)
        numbers = values[[c for c in values.columns if n != 3 or c in paper.METRICS]]
        assert numbers.notna().all().all() and ((numbers > 0) & (numbers <= 100)).all().all(), n


def test_tables_are_packaged_one_csv_each():
    files = {f.name for f in resources.files("ulsad").joinpath("paper_tables").iterdir() if f.name.endswith(".csv")}
    assert files == {f"table{n:02d}.csv" for n in paper.TABLES} | {"own_papers.csv"}


def test_appendix_tables_and_captions():
    assert paper.PER_CATEGORY == {v: k for k, v in APPENDIX.items()}
    for n, (dataset, metric) in APPENDIX.items():
        assert CAPTION_WORDS[dataset] in paper.CAPTIONS[n] and CAPTION_WORDS[metric] in paper.CAPTIONS[n]
        t = paper.table(n)
        assert list(t.columns) == ["CFLOW", "DRÆM", "FastFlow", "PaDiM", "PatchCore", "R4AD", "DFR", "EffAD",
                                   "ULSAD"]
        assert t.index[-1] == "Mean"
        # Only ULSAD is run over seeds: it alone has a ± in every row.
        stds = paper.table(n, std=True)
        assert stds["ULSAD"].notna().all() and stds.drop(columns="ULSAD").isna().all().all()


def test_table3_configurations():
    t = paper.table(3)
    assert t["λ_g"].isna().sum() == 2 and (t["L_pg^d"] & t["L_pg"]).sum() == 0
    assert t.loc[11, "I-AUROC"] == 84.10 and paper.table(3, std=True).loc[11, "I-AUROC"] == 0.86


def test_helpers():
    assert paper.summary("mvtec_loco", "image_auroc")["ULSAD"] == 84.1
    assert paper.summary("MVTec-LOCO", "I-AUROC", std=True)["ULSAD"] == 0.86
    assert paper.summary("visa", "aupro")["Reverse Distillation"] == 91.77
    loco = paper.per_category("MVTec LOCO", "P-AUROC")
    assert "Reverse Distillation" in loco.columns and loco.loc["pushpins", "ULSAD"] == 75.64
    t = paper.table(6)
    t.iloc[0, 0] = -1.0
    assert paper.table(6).iloc[0, 0] == 100.0  # callers get copies
    with pytest.raises(ValueError, match="no results table 4"):
        paper.table(4)
    with pytest.raises(ValueError, match="unknown dataset"):
        paper.summary("cifar", "aupro")


def label(name):
    return " | ".join(name) if isinstance(name, tuple) else str(name)


def inconsistencies():
    """(table, row, column) -> (printed, recomputed) for every cell that its source contradicts beyond rounding."""
    found = {}

    def check(table, row, column, printed, recomputed):
        if abs(printed - recomputed) > TOLERANCE + 1e-9:
            found[(table, label(row), label(column))] = (printed, recomputed)

    # Every printed Mean row against the mean of the categories above it.
    for n in [*APPENDIX, 21]:
        t = paper.table(n)
        for column in t.columns:
            check(n, "Mean", column, t.loc["Mean", column], t[column].drop("Mean").mean())
    t22 = paper.table(22)
    for setting in t22.index.unique("Setting"):
        block = t22.loc[setting]
        for column in block.columns:
            check(22, (setting, "Mean"), column, block.loc["Mean", column], block[column].drop("Mean").mean())

    # Tables 1 and 2 against the means of the categories of Tables 6-20.
    for n, (dataset, metric) in APPENDIX.items():
        categories = paper.table(n).drop("Mean").rename(columns=paper.METHOD_NAMES)
        if metric == "I-AUROC":
            printed, summary_table, column = paper.table(1)[dataset], 1, dataset
        else:
            printed, summary_table, column = paper.table(2)[(dataset, metric)], 2, (dataset, metric)
        for method, value in printed.items():
            check(summary_table, method, column, value, categories[method].mean())

    # Table 3 against the ablation tables its rows summarise, found from each row's configuration:
    # a local branch alone is a column of Table 21, the others a column of Table 22; the row with a ±
    # is the full model over 5 seeds, ULSAD's column of Tables 9-11.
    t3, t3_std = paper.table(3), paper.table(3, std=True)
    for row, config in t3.iterrows():
        for metric in paper.METRICS:
            if not np.isnan(t3_std.loc[row, metric]):
                source = paper.table(PER_CATEGORY_LOCO[metric])["ULSAD"].drop("Mean")
            elif np.isnan(config["λ_g"]):
                source = paper.table(21)[(f"λ_l = {config['λ_l']:g}", metric)].drop("Mean")
            else:
                losses = ("L_pg^d" if config["L_pg^d"] else "L_pg") + ("; L_lg" if config["L_lg"] else "")
                source = t22.loc[f"λ_l = λ_g = {config['λ_l']:.1f}"][(losses, metric)].drop("Mean")
            check(3, row, metric, config[metric], source.mean())
    return found



def test_inconsistencies_are_exactly_the_errata():
    errata = paper.errata()
    assert list(errata.columns) == ["table", "row", "column", "printed", "recomputed", "note"]
    numeric = errata[errata["recomputed"].notna()]
    found = inconsistencies()
    assert set(found) == {(e.table, e.row, e.column) for e in numeric.itertuples()}
    for e in numeric.itertuples():
        printed, recomputed = found[(e.table, e.row, e.column)]
        assert printed == e.printed and recomputed == pytest.approx(e.recomputed, abs=0.005)


def test_the_known_errata_are_found():
    # docs/design.md, "Table errata": Table 1's VisA column repeats BTAD for six methods; Table 18's means differ.
    found = inconsistencies()
    t1 = paper.table(1)
    for method in ["CFLOW", "DRÆM", "FastFlow", "PaDiM", "Reverse Distillation", "DFR"]:
        assert (1, method, "VisA") in found and t1.loc[method, "VisA"] == t1.loc[method, "BTAD"]
    assert (18, "Mean", "DFR") in found


def test_text_errata_match_the_transcription():
    notes = paper.errata()[paper.errata()["recomputed"].isna()]
    assert sorted(notes["table"]) == [7, 23, 23]
    t23 = paper.table(23)
    assert "Wide-ResNet100-2" in t23.columns.unique("Backbone")
    assert sorted(b for b, metric in t23.columns if metric == "unlabelled") == [
        "ResNet152", "ResNet50", "Wide-ResNet100-2"]
    assert paper.table(7).loc["Mean", "DRÆM"] == 75.01


def test_ulsad_std_agrees_between_tables():
    # The ± of a summary cell is the seeds' std of the mean: it must be the per-category table's Mean ±.
    for n, (dataset, metric) in APPENDIX.items():
        assert paper.summary(dataset, metric, std=True)["ULSAD"] == paper.table(n, std=True).loc["Mean", "ULSAD"]
    t3_std = paper.table(3, std=True)
    for metric, n in PER_CATEGORY_LOCO.items():
        assert t3_std.loc[11, metric] == paper.table(n, std=True).loc["Mean", "ULSAD"]


def test_own_papers_name_only_what_table1_has():
    own = paper.own_papers()
    assert list(own.columns) == ["method", "dataset", "image_auroc", "setting", "reference"]
    t1 = paper.table(1)
    assert set(own["method"]) <= set(t1.index) - {"ULSAD", "DFR"} and set(own["dataset"]) <= set(t1.columns)
    assert not own.duplicated(["method", "dataset"]).any()
    assert ((own["image_auroc"] > 0) & (own["image_auroc"] <= 100)).all()
    assert (own["reference"].str.len() > 0).all()
    # Every baseline of Table 1 but DFR has its own paper's MVTec AD number.
    assert set(own.loc[own["dataset"] == "MVTec", "method"]) == set(t1.index) - {"ULSAD", "DFR"}


def test_beside_table1_puts_each_own_number_beside_table1():
    beside = paper.beside_table1()
    own = paper.own_papers()
    assert list(beside.columns) == ["Table 1", "own paper", "own - Table 1", "ULSAD (Table 1)", "setting", "reference"]
    assert list(beside.index) == list(zip(own["method"], own["dataset"]))
    t1 = paper.table(1)
    for (method, dataset), row in beside.iterrows():
        assert row["Table 1"] == t1.loc[method, dataset] and row["ULSAD (Table 1)"] == t1.loc["ULSAD", dataset]
    assert beside["own - Table 1"].to_numpy() == pytest.approx((beside["own paper"] - beside["Table 1"]).to_numpy(),
                                                                abs=1e-9)


def test_beside_table1_known_rows():
    beside = paper.beside_table1()
    # EfficientAD's own MVTec LOCO number is above ULSAD's, which Table 1 ranks first there.
    loco = beside.loc[("EfficientAD", "MVTec-LOCO")]
    assert (loco["Table 1"], loco["own paper"], loco["own - Table 1"]) == (80.62, 90.7, 10.08)
    assert loco["own paper"] > loco["ULSAD (Table 1)"] == 84.1
    assert beside.loc[("Reverse Distillation", "MVTec"), "own - Table 1"] == 18.85
    assert beside.loc[("DRÆM", "MVTec"), "own - Table 1"] == 22.74
    # Table 1 prints no baseline above its own paper's number.
    assert (beside["own - Table 1"] > 0).all()
