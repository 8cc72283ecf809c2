"""The book as a reader gets it: the HTML build of every chapter (smoke profile), its figures,
no error outputs, and the pages rendering in headless Chromium, equations included, without the network."""
import http.server
import re
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build the book into a temporary folder, executing every chapter afresh in `smoke`; the site
    and the build's log."""
    out = tmp_path_factory.mktemp("book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "force"  # never reuse outputs cached by another profile
    extensions = config["sphinx"].get("local_extensions") or {}  # their paths are relative to the config file
    config["sphinx"]["local_extensions"] = {name: str(ROOT / path) for name, path in extensions.items()}
    (out / "_config.yml").write_text(yaml.safe_dump(config))
    env = {**__import__("os").environ, "ULSAD_PROFILE": "smoke", "ULSAD_HOME": str(out / "home")}
    jupyter_book = Path(sys.executable).with_name("jupyter-book")  # its console script; 1.x has no __main__
    build = subprocess.run([str(jupyter_book), "build", str(ROOT), "--path-output", str(out),
                            "--config", str(out / "_config.yml")],
                           env=env, capture_output=True, text=True, timeout=3000)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    site = out / "_build" / "html"
    reports = list((site / "reports").glob("*")) if (site / "reports").exists() else []
    assert not reports, f"chapters failed to execute: {[r.name for r in reports]}"
    return site, build.stdout + build.stderr


@pytest.fixture(scope="module")
def html(built):
    return built[0]


def test_every_link_between_pages_resolves(built):
    """A link to another page's section (../docs/design.md#algorithm-1-errata) finds its anchor."""
    log = built[1]
    unresolved = [line for line in log.splitlines()
                  if "xref_missing" in line or "target not found" in line or "undefined label" in line]
    assert not unresolved, "\n".join(unresolved)


def test_every_citation_resolves_to_an_entry_of_the_bibliography(built):
    site, log = built
    unresolved = [line for line in log.splitlines() if "could not find bibtex key" in line]
    assert not unresolved, "\n".join(unresolved)
    references = (site / "book" / "references.html").read_text()
    assert "towards total recall in industrial anomaly detection" in references.lower()  # the style lowercases titles


def test_every_chapter_of_the_table_of_contents_has_a_page(html):
    missing = [c for c in chapters() if not (html / f"{c}.html").is_file()]
    assert not missing


def test_every_figure_a_page_references_exists(html):
    for chapter in chapters():
        page = html / f"{chapter}.html"
        for src in re.findall(r'<img[^>]+src="([^"]+)"', page.read_text()):
            if not src.startswith(("http:", "https:", "data:")):
                assert (page.parent / src).is_file(), f"{chapter}: missing {src}"


def test_no_cell_output_is_an_error(html):
    for chapter in chapters():
        text = (html / f"{chapter}.html").read_text()
        assert "output traceback" not in text and "ipythontb" not in text, chapter


@pytest.fixture(scope="module")
def site(html):
    """The built book served over HTTP on localhost, as a reader's browser would open it."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's), with its own background traffic switched off."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        yield browser
        browser.close()


def open_page(browser, requests: list[str]):
    """A new tab that records the URL of every request it makes into `requests`."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("request", lambda request: requests.append(request.url))
    return page


def external(requests: list[str], site: str) -> list[str]:
    """The requests that leave the machine: anything but the book's own server, file:, data: and blob:."""
    return sorted({url for url in requests if urlsplit(url).scheme in ("http", "https", "ws", "wss")
                   and urlsplit(url).netloc != urlsplit(site).netloc})


def test_pages_render_in_headless_chromium(site, browser, tmp_path):
    """Every page shows its figures, is not blank, and requests nothing from another host (no CDN)."""
    from PIL import Image, ImageStat
    requests = []
    page = open_page(browser, requests)
    for chapter in chapters():
        page.goto(f"{site}/{chapter}.html", wait_until="load")
        page.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function("[...document.images].every(i => i.complete)", timeout=20000)
        broken = page.evaluate("[...document.images].filter(i => i.src.startsWith(location.origin)"
                               " && i.naturalWidth === 0).map(i => i.src)")
        assert not broken, f"{chapter}: images that failed to load: {broken}"
        shot = tmp_path / f"{chapter.replace('/', '_')}.png"
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(shot))
        spread = ImageStat.Stat(Image.open(shot).convert("L")).stddev[0]
        assert spread > 5, f"{chapter}: the page looks blank (pixel std {spread:.1f})"
    page.close()
    assert not external(requests, site), f"pages request other hosts: {external(requests, site)}"


def test_equations_are_typeset_by_the_books_own_mathjax(site, browser):
    """A chapter's equations come out as MathJax's rendered math, not raw TeX, with MathJax and all it
    loads (TeX extensions such as \\boldsymbol) served from the book itself."""
    requests = []
    page = open_page(browser, requests)
    page.goto(f"{site}/book/04_attention.html", wait_until="load")
    page.wait_for_function("window.MathJax?.startup?.promise !== undefined", timeout=20000)
    page.evaluate("MathJax.startup.promise")  # resolves once the page is typeset
    assert page.locator("mjx-container").count() > 0
    raw = page.evaluate(r"[...document.querySelectorAll('.math')]"  # Sphinx's \(..\) and \[..\] elements
                        r".filter(e => !e.querySelector('mjx-container') || /\\[([]/.test(e.innerText))"
                        r".map(e => e.textContent.trim().slice(0, 80))")
    assert not raw, f"equations left as raw TeX: {raw[:5]}"
    assert page.locator("mjx-merror").count() == 0, "an equation failed to typeset"
    assert any(url.startswith(f"{site}/_static/mathjax/") for url in requests), "MathJax is not the book's own"
    page.close()
    assert not external(requests, site), f"the page requests other hosts: {external(requests, site)}"
