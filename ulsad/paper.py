"""The paper's reported results as data: every results table (Tables 1-3 and 6-23).

Each table is transcribed from the paper text into ``paper_tables/tableNN.csv``,
one printed cell per CSV cell, values in percent as printed. The transcription
drops only typography: bold and underline (best / second best), citations after
method names ("CFLOW (2021)" -> "CFLOW", "ULSAD (Ours)" -> "ULSAD"). Method and
category names are otherwise the paper's own, which differ between tables:
Tables 6-20 say "R4AD" and "EffAD" where Tables 1-2 say "Reverse Distillation"
and "EfficientAD". Tables 4 and 5 describe the architecture and are not here.

    table(n)            the table as a DataFrame of floats (NaN where nothing is printed)
    table(n, std=True)  the same shape, holding the printed "± std" (NaN where none)
    summary(dataset, metric)       Table 1 or 2 as a Series, method -> value
    per_category(dataset, metric)  the matching table of 6-20, methods named as in Tables 1-2
    errata()            every inconsistency found in the tables, as a DataFrame
    own_papers()        the baselines' image AUROC as their own papers report it (not the ULSAD paper)
    beside_table1()     those numbers beside Table 1's for the same method and dataset, and the difference
    CAPTIONS            n -> caption as printed

A cell printed "97.65 ± 0.38" is the mean and std over the paper's 5 seeds; only
ULSAD has them. Two-row headers (Table 2: dataset and metric; Tables 21-23:
setting and metric) become a column MultiIndex; Table 22's two blocks
(λ_l = λ_g = 0.0 and 0.5) a row MultiIndex. Table 3 keeps its configuration
columns: λ_l and λ_g as floats (NaN where printed "-"), the loss columns as
booleans (printed ✓ or -). Table 23's rows carry a fourth value for three
backbones that its header does not name: metric "unlabelled" (see errata()).
"""
from __future__ import annotations

import functools
import re
from importlib import resources

import numpy as np
import pandas as pd

CAPTIONS = {
    1: "Average Detection Performance in AUROC (%). Style: best and second best",
    2: "Average Segmentation Performance in AUROC (%) and AUPRO (%). Style: best and second best",
    3: "Ablation of the main components of ULSAD.",
    6: "Anomaly detection based on Image AUROC on MVTec dataset.",
    7: "Anomaly segmentation performance based on Pixel AUROC on MVTec dataset.",
    8: "Anomaly segmentation performance based on Pixel AUPRO on MVTec dataset.",
    9: "Anomaly detection performance based on Image AUROC on MVTecLOCO dataset.",
    10: "Anomaly segmentation performance based on Pixel AUROC on MVTecLOCO dataset.",
    11: "Anomaly segmentation performance based on Pixel AUPRO on MVTecLOCO dataset.",
    12: "Anomaly detection performance based on Image AUROC on MPDD dataset.",
    13: "Anomaly segmentation performance based on Pixel AUROC on MPDD dataset.",
    14: "Anomaly segmentation performance based on Pixel AUPRO on MPDD dataset.",
    15: "Anomaly detection performance based on Image AUROC on BTAD dataset.",
    16: "Anomaly segmentation performance based on Pixel AUROC on BTAD dataset.",
    17: "Anomaly segmentation performance based on AUPRO on BTAD dataset.",
    18: "Anomaly detection performance based on Image AUROC on VisA dataset.",
    19: "Anomaly segmentation performance based on Pixel AUROC on VisA dataset.",
    20: "Anomaly segmentation performance based on AUPRO on VisA dataset.",
    21: "Abalations for local branch. Style: I-AUROC | P-AUROC | P-AUPRO.",
    22: "Abalations for total architecture. Style: I-AUROC | P-AUROC | P-AUPRO.",
    23: "Abalations for backbone on MvTec-LOCO. Style: I-AUROC | P-AUROC | P-AUPRO.",
}
TABLES = tuple(CAPTIONS)

DATASETS = ("BTAD", "MPDD", "MVTec", "MVTec-LOCO", "VisA")  # as Table 1 names them
METRICS = ("I-AUROC", "P-AUROC", "P-AUPRO")  # as Tables 21-23 name them

# (dataset, metric) -> the per-category table of Appendix B.
PER_CATEGORY = {
    (dataset, metric): first + k
    for dataset, first in (("MVTec", 6), ("MVTec-LOCO", 9), ("MPDD", 12), ("BTAD", 15), ("VisA", 18))
    for k, metric in enumerate(METRICS)
}

# Tables 6-20 name two methods differently from Tables 1-2.
METHOD_NAMES = {"R4AD": "Reverse Distillation", "EffAD": "EfficientAD"}

# What the columns hold; "upper|lower" headers in the CSVs become two levels. Tables 6-20: "Method".
_COLUMN_NAMES = {1: ["Dataset"], 2: ["Dataset", "Metric"], 3: [None], 21: ["Setting", "Metric"],
                 22: ["Losses", "Metric"], 23: ["Backbone", "Metric"]}
_METRIC_ALIASES = {"iauroc": "I-AUROC", "imageauroc": "I-AUROC", "pauroc": "P-AUROC",
                   "pixelauroc": "P-AUROC", "paupro": "P-AUPRO", "aupro": "P-AUPRO", "pixelaupro": "P-AUPRO"}
_DATASET_ALIASES = {"btad": "BTAD", "mpdd": "MPDD", "mvtec": "MVTec", "mvtecad": "MVTec",
                    "mvtecloco": "MVTec-LOCO", "mvteclocoad": "MVTec-LOCO", "visa": "VisA"}

# Found by tests/test_paper.py, which fails if any of the numeric ones (those with a recomputed
# value) stops being found or another appears. "recomputed" is the mean of the categories of the
# matching per-category table; the other rows are defects of the text itself.
_ERRATA = [
    (1, "CFLOW", "VisA", 93.57, 87.77, "repeats the BTAD column; Table 18's categories average 87.77"),
    (1, "DRÆM", "VisA", 73.42, 77.75, "repeats the BTAD column; Table 18's categories average 77.75"),
    (1, "FastFlow", "VisA", 91.68, 87.49, "repeats the BTAD column; Table 18's categories average 87.49"),
    (1, "PaDiM", "VisA", 93.20, 83.28, "repeats the BTAD column; Table 18's categories average 83.28"),
    (1, "Reverse Distillation", "VisA", 83.87, 86.24,
     "repeats the BTAD column; Table 18's categories average 86.24"),
    (1, "DFR", "VisA", 94.60, 93.31,
     "repeats the BTAD column; Table 18's categories average 93.31 and its Mean row prints 85.18"),
    (18, "Mean", "DFR", 85.18, 93.31, "the printed mean is not the mean of the 12 categories above it"),
    (7, "Mean", "DRÆM", "75.01m", np.nan, "stray 'm' in the text; read as 75.01, which agrees with the categories"),
    (23, "header", "Wide-ResNet100-2", "Wide-ResNet100-2", np.nan,
     "no such network: Sec. 4.3 names Wide-ResNet101-2, the backbone of Fig. 8"),
    (23, "every row", "ResNet50, ResNet152, Wide-ResNet100-2", "4 values", np.nan,
     "the header gives each backbone 3 columns (I-AUROC | P-AUROC | P-AUPRO), but the rows carry a 4th "
     "unnamed value for these three (transcribed as metric 'unlabelled'); Wide-ResNet50-2 has 3"),
]


def table(n: int, std: bool = False) -> pd.DataFrame:
    """Table ``n`` of the paper; with ``std=True`` the printed ± values in the same shape."""
    values, stds = _load(n)
    return (stds if std else values).copy()


def summary(dataset: str, metric: str, std: bool = False) -> pd.Series:
    """Table 1 (I-AUROC) or Table 2 (P-AUROC, P-AUPRO) for one dataset: method -> value (or ± with std=True)."""
    dataset, metric = _dataset(dataset), _metric(metric)
    if metric == "I-AUROC":
        return table(1, std)[dataset].rename(f"{dataset} {metric}")
    return table(2, std)[(dataset, metric)].rename(f"{dataset} {metric}")


def per_category(dataset: str, metric: str, std: bool = False) -> pd.DataFrame:
    """The per-category table (one of 6-20) for ``dataset`` and ``metric``, methods named as in Tables 1-2."""
    return table(PER_CATEGORY[(_dataset(dataset), _metric(metric))], std).rename(columns=METHOD_NAMES)


def errata() -> pd.DataFrame:
    """Every inconsistency found in the tables: where, the printed value, the recomputed one (if any), a note."""
    return pd.DataFrame(_ERRATA, columns=["table", "row", "column", "printed", "recomputed", "note"])


def own_papers() -> pd.DataFrame:
    """The baselines' image AUROC (%) as each baseline's own paper reports it, for its headline setting.

    One row per (method, dataset) that its paper reports and Table 1 lists: columns ``method`` and
    ``dataset`` (named as in Table 1), ``image_auroc`` (float, as printed there), ``setting`` (the
    variant or backbone the number belongs to; "" where the paper has one setting) and ``reference``.
    These numbers are not the ULSAD paper's: it ran the baselines itself (from anomalib), so its
    Table 1 need not, and mostly does not, agree with them. Data: ``paper_tables/own_papers.csv``.
    """
    with resources.files(__package__).joinpath("paper_tables/own_papers.csv").open(encoding="utf-8") as f:
        return pd.read_csv(f, dtype={"image_auroc": float}, keep_default_na=False)


def beside_table1() -> pd.DataFrame:
    """Every row of ``own_papers()`` beside Table 1's value for the same method and dataset.

    Indexed by (method, dataset), in the order of ``own_papers()``. Columns: ``Table 1`` (the
    baseline's image AUROC as the ULSAD paper prints it, from its own runs of the baseline), ``own
    paper`` (as the baseline's paper reports it), ``own - Table 1`` (their difference, rounded to
    0.01 as both are printed), ``ULSAD (Table 1)`` (ULSAD's mean over seeds for the same dataset,
    the number the baseline is ranked against), ``setting`` and ``reference`` (of the own paper).
    A positive difference means Table 1 prints the baseline below what its own paper reports.
    """
    own = own_papers()
    t1 = table(1)
    t1_value = [t1.loc[m, d] for m, d in zip(own["method"], own["dataset"])]
    return pd.DataFrame({
        "Table 1": t1_value,
        "own paper": own["image_auroc"].to_numpy(),
        "own - Table 1": (own["image_auroc"] - t1_value).round(2).to_numpy(),
        "ULSAD (Table 1)": t1.loc["ULSAD", own["dataset"]].to_numpy(),
        "setting": own["setting"].to_numpy(),
        "reference": own["reference"].to_numpy(),
    }, index=pd.MultiIndex.from_frame(own[["method", "dataset"]]))


@functools.lru_cache(maxsize=None)
def _load(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if n not in CAPTIONS:
        raise ValueError(f"the paper has no results table {n}; its results tables are {TABLES}")
    with resources.files(__package__).joinpath(f"paper_tables/table{n:02d}.csv").open(encoding="utf-8") as f:
        cells = pd.read_csv(f, dtype=str, keep_default_na=False)
    # Table 22 stacks two blocks (λ_l = λ_g = 0.0 and 0.5): its first two columns index the rows.
    cells = cells.set_index(list(cells.columns[:2 if n == 22 else 1]))
    if n == 3:
        cells.index = cells.index.astype(int)
    names = _COLUMN_NAMES.get(n, ["Method"])
    if len(names) == 2:
        cells.columns = pd.MultiIndex.from_tuples([c.split("|") for c in cells.columns], names=names)
    else:
        cells.columns.name = names[0]

    config = [c for c in cells.columns if n == 3 and c not in METRICS]
    values = cells.drop(columns=config).map(lambda cell: _number(cell)[0])
    stds = cells.drop(columns=config).map(lambda cell: _number(cell)[1])
    if config:
        # Table 3: λ "-" means the branch is absent; the loss columns are ticks.
        settings = pd.DataFrame({c: cells[c].map(lambda s: np.nan if s == "-" else float(s)) for c in ["λ_l", "λ_g"]})
        losses = cells[[c for c in config if c.startswith("L_")]] == "✓"
        values = pd.concat([settings, losses, values], axis=1)
        stds = pd.concat([settings, losses, stds], axis=1)
    return values, stds


def _number(cell: str) -> tuple[float, float]:
    """A printed cell -> (value, std): "97.65 ± 0.38" -> (97.65, 0.38); "94.6" -> (94.6, nan); "" -> (nan, nan)."""
    value, _, std = cell.partition("±")
    return (float(value) if value.strip() else np.nan), (float(std) if std.strip() else np.nan)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _dataset(name: str) -> str:
    if _key(name) not in _DATASET_ALIASES:
        raise ValueError(f"unknown dataset {name!r}; the paper's datasets are {DATASETS}")
    return _DATASET_ALIASES[_key(name)]


def _metric(name: str) -> str:
    if _key(name) not in _METRIC_ALIASES:
        raise ValueError(f"unknown metric {name!r}; use one of {METRICS} (or image_auroc, pixel_auroc, aupro)")
    return _METRIC_ALIASES[_key(name)]
