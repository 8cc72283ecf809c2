"""The committed chapters: executed, free of errors, each runnable alone, wired to one repository URL;
and every page of the table of contents (chapters as notebooks, the appendix as Markdown) exists."""
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [ROOT / c["file"] for part in TOC["parts"] for c in part["chapters"]]
NOTEBOOKS = [p.with_suffix(".ipynb") for p in PAGES if p.with_suffix(".ipynb").is_file()]
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def cells(path):
    return json.loads(path.read_text())["cells"]


def test_every_page_in_the_table_of_contents_exists():
    missing = [str(p) for p in PAGES if not (p.with_suffix(".ipynb").is_file() or p.with_suffix(".md").is_file())]
    assert PAGES and not missing, missing
    assert len(NOTEBOOKS) == 13


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_is_committed_executed_and_without_errors(path):
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if c["source"]), "not executed top to bottom"
    assert not [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_fetches_the_configured_repository_then_sets_up(path):
    from ulsad.book.first_cell import first_cell

    code = ["".join(c["source"]) for c in cells(path) if c["cell_type"] == "code"]
    assert f'"{REPO_URL}"' in first_cell()
    assert code[0] == first_cell(), \
        "the first code cell is generated from _config.yml: run `python -m ulsad.book.first_cell`"
    assert "setup(" in code[1]


def test_the_repository_url_is_written_only_in_the_generated_first_cells():
    """_config.yml sets it; the chapters' first cells are generated from it; no page copies it by hand."""
    first = {str(p) for p in NOTEBOOKS}
    pages = [*NOTEBOOKS, *(p.with_suffix(".md") for p in PAGES), ROOT / "book" / "index.md"]
    copies = [str(p) for p in pages if p.is_file() and p.read_text().count(REPO_URL) > (str(p) in first)]
    assert not copies, copies


COMMITTED_RESULTS = sorted(p for run in ("synthetic-demo", "synthetic-cpu-full") for p in (ROOT / "results" / run).rglob("*.csv"))


@pytest.mark.parametrize("path", COMMITTED_RESULTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_results_name_no_path_of_the_machine_they_were_made_on(path):
    """The book's results are committed so that its build resumes from them; they must travel to any clone."""
    import pandas as pd

    table = pd.read_csv(path)
    if "root" in table:
        assert not [r for r in table["root"].dropna() if Path(str(r)).is_absolute()], "dataset roots must be relative"
    assert str(ROOT) not in path.read_text()


CHAPTER_TIMES = ROOT / "results" / "synthetic-demo" / "chapter-times" / "times.csv"


def measured_minutes(seconds: float) -> str:
    """How an opener states a measured time: the nearest minute, or "under a minute"."""
    return "under a minute" if seconds < 60 else f"about {round(seconds / 60)} min"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_opens_with_the_minutes_measured_for_it_alone(path):
    """Each opener's time line quotes benchmarks/chapter_times.py's measurement of that chapter, opened alone
    in a fresh clone (nothing trained yet), with the machine it ran on."""
    import re

    import pandas as pd

    times = pd.read_csv(CHAPTER_TIMES).set_index("chapter")
    chapter = path.relative_to(ROOT).as_posix()
    assert chapter in times.index, f"no measured time: run python benchmarks/chapter_times.py --machine ... {chapter}"
    opener = next("".join(c["source"]) for c in cells(path)
                  if c["cell_type"] == "markdown" and "What this chapter needs" in "".join(c["source"]))
    line = re.search(r"\*\*Time\*\*:? (.*?)(?=\n- |\n```|\n\*\*|$)", opener, re.S)
    assert line, "the opener has no **Time**: line"
    said = " ".join(line.group(1).split())
    row = times.loc[chapter]
    assert measured_minutes(row["seconds"]) in said, (said, row["seconds"])
    assert "benchmarks/chapter_times.py" in said and "GPU" in said
