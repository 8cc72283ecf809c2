"""Every number a chapter's prose quotes is one the reader can find: in the chapter's printed outputs, its code,
the package's constants or the paper's tables as printed, or the difference or ratio of two such numbers quoted beside
it. A number that appears nowhere (an output changed since the prose was written, or a value read off a
figure) fails, naming the chapter and the sentence."""
import json
import re
from pathlib import Path

import pytest

from ulsad.book.execute import chapters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = chapters(ROOT)

DECIMAL = re.compile(r"(?<![\w.])(?<![A-Za-z]-)\d+\.\d+(?!\w|\.\d)")  # not a name's version ("Apache-2.0")
# Numbers that name things rather than measure them: sections, chapters, tables, equations, versions.
REFERENCE = re.compile(r"(?:Sections?|Chapters?|Tables?|Figures?|Fig\.|Sec\.|Eqs?\.|Algorithm|version|v)[\s~]*\d+(?:\.\d+)*"
                       r"(?:\s*(?:,|and|or|to|–|-)\s*\d+(?:\.\d+)+)*", re.I)
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def decimals(text: str) -> list[str]:
    return DECIMAL.findall(text)


def roundings(number: str) -> set[str]:
    """``number`` as prose may quote it: itself, rounded to 0-2 decimals, and as a percentage."""
    x = float(number)
    return {number, *(f"{x:.{d}f}" for d in range(3)), *(f"{100 * x:.{d}f}" for d in (1, 2))}


def package_numbers() -> set[str]:
    """The constants of the package's code (a quantile, a tolerance), as prose may quote them, and the paper's
    tables exactly as printed (rounded, a value of theirs would match almost any number)."""
    found = set()
    for path in (ROOT / "ulsad").rglob("*.py"):
        for n in decimals(path.read_text(encoding="utf-8")):
            found |= roundings(n)
    for path in (ROOT / "ulsad" / "paper_tables").glob("*.csv"):
        text = re.sub(r"±\s*\d+\.\d+", " ", path.read_text(encoding="utf-8"))  # a std would match any small difference
        found |= set(decimals(text))
    return found


PACKAGE = package_numbers()


def chapter_sources(nb: dict) -> set[str]:
    """The numbers of a chapter's code cells and text outputs (printed, tables, markdown), rounded as prose may."""
    found = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        texts = ["".join(cell["source"])]
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")))
            texts += ["".join(out.get("data", {}).get(kind, "")) for kind in ("text/plain", "text/html", "text/markdown")]
        for n in decimals("\n".join(texts)):
            found |= roundings(n)
        for n in re.findall(r"(?<![\w.])\d{6,}(?![\w.])", "\n".join(texts)):  # counts quoted in millions ("18.9 M")
            found |= {f"{int(n) / 1e6:.1f}", f"{int(n) / 1e6:.2f}"}
    return found


def prose(nb: dict) -> list[str]:
    """The chapter's paragraphs (and table rows) without headings, maths, inline code and link targets."""
    paragraphs = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(line for line in "".join(cell["source"]).splitlines(True) if not line.startswith("#"))
        text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`", " ", text, flags=re.S)
        text = REFERENCE.sub(" ", LINK.sub(r"\1", text))
        paragraphs += [p for p in re.split(r"\n\s*\n|\n(?=\|)|\n(?=[-*] )", text) if p.strip()]
    return paragraphs


DIFFERENCE = re.compile(r"(?:\bby|\bof|\bloses|\bgains|\bcosts|[+−-]|spread of|within)\s*$")
UNIT_OF_DIFFERENCE = re.compile(r"^\s*(?:points?|times|×)")


def derived(number: str, paragraph: str) -> bool:
    """``number`` is quoted as a difference ("by 2.11 points", "+2.11") or a ratio ("4.4 times") of two numbers
    quoted in the same paragraph, and is one at its precision."""
    at = paragraph.find(number)
    if not (DIFFERENCE.search(paragraph[max(0, at - 12):at]) or UNIT_OF_DIFFERENCE.match(paragraph[at + len(number):])):
        return False
    places = len(number.split(".")[1])
    values = [float(n) for n in decimals(paragraph) if n != number]
    tolerance = 1.01 * 10 ** -places  # both operands were rounded too
    return any(abs(abs(a - b) - float(number)) <= tolerance or (b and abs(a / b - float(number)) <= tolerance)
               for a in values for b in values if a != b)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_number_in_the_prose_is_one_the_reader_can_find(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    sources = chapter_sources(nb) | PACKAGE
    unfound = []
    for paragraph in prose(nb):
        quoted = decimals(paragraph)
        for number in quoted:
            if number not in sources and not derived(number, paragraph):
                at = paragraph.find(number)
                unfound.append(f"{number} in …{' '.join(paragraph[max(0, at - 90):at + 30].split())}…")
    assert not unfound, f"{path.name}: numbers quoted in the prose that no output, code or table holds:\n" + \
        "\n".join(unfound)


def test_a_number_read_off_nothing_is_found_and_a_difference_of_two_quoted_ones_is_not():
    nb = {"cells": [
        {"cell_type": "code", "source": ["print(82.604, 88.219)"], "outputs": [{"text": ["82.604 88.219\n"]}]},
        {"cell_type": "markdown", "source": ["The rows span 5.62 points (82.60 to 88.22); Section 10.3 says more.\n\n"
                                             "The best row reaches 91.37, between 5.62 and 88.22.\n"]}]}
    sources = chapter_sources(nb)
    first, second = prose(nb)
    assert decimals(first) == ["5.62", "82.60", "88.22"]  # the section number is no quoted number
    assert decimals(second) == ["91.37", "5.62", "88.22"]
    assert {"82.60", "88.22"} <= sources and derived("5.62", first)
    assert "91.37" not in sources and not derived("91.37", second)
    assert not derived("5.62", second)  # not quoted as a difference there
