"""benchmarks/chapter_times.py: each chapter's row replaced alone, bad input refused before any chapter runs."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import chapter_times as script  # noqa: E402


def row(chapter: str, seconds: int) -> dict:
    return {"chapter": chapter, "seconds": seconds, "profile": "demo", "commit": "abc", "torch_threads": 2,
            "machine": "test", "date": "2026-12-05"}


def test_a_measured_chapter_replaces_its_own_row_and_keeps_the_others(tmp_path):
    out = tmp_path / "times.csv"
    script.write_rows(out, {"book/02.ipynb": row("book/02.ipynb", 10), "book/01.ipynb": row("book/01.ipynb", 7)})
    rows = script.read_rows(out)
    rows["book/02.ipynb"] = row("book/02.ipynb", 12)
    script.write_rows(out, rows)
    again = script.read_rows(out)
    assert list(again) == ["book/01.ipynb", "book/02.ipynb"]  # in chapter order
    assert again["book/01.ipynb"]["seconds"] == "7" and again["book/02.ipynb"]["seconds"] == "12"
    assert not list(tmp_path.glob("*.part"))


def test_a_table_with_other_columns_is_refused_naming_the_file(tmp_path):
    out = tmp_path / "times.csv"
    out.write_text("chapter,minutes\nbook/01.ipynb,1\n")
    with pytest.raises(SystemExit, match="times.csv: expected the columns chapter, seconds"):
        script.read_rows(out)


def test_an_unknown_chapter_is_refused_before_anything_is_cloned(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(script, "time_alone", lambda *a: pytest.fail("a chapter ran"))
    with pytest.raises(SystemExit):
        script.main(["--machine", "test", "--out", str(tmp_path / "times.csv"), "book/99_nothing.ipynb"])
    assert "book/99_nothing.ipynb" in capsys.readouterr().err
    assert not (tmp_path / "times.csv").exists()


def test_every_chapter_of_the_book_has_its_measured_time():
    from ulsad.book.execute import chapters

    rows = script.read_rows(script.OUT)
    assert {p.relative_to(ROOT).as_posix() for p in chapters(ROOT)} == set(rows)
    assert all(int(r["seconds"]) > 0 and r["profile"] == "demo" and r["machine"] for r in rows.values())
