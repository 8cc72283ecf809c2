"""The book as a reader gets it: the HTML build of every chapter (smoke profile), its figures,
no error outputs, and the pages rendering in headless Chromium."""
import http.server
import re
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    """Build the book into a temporary folder, executing every chapter afresh in `smoke`."""
    out = tmp_path_factory.mktemp("book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "force"  # never reuse outputs cached by another profile
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
    return site


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


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
def test_pages_render_in_headless_chromium(html, tmp_path):
    from PIL import Image, ImageStat
    from playwright.sync_api import sync_playwright

    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update"]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for chapter in chapters():
                page.goto(f"{base}/{chapter}.html", wait_until="load")
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
            browser.close()
    finally:
        server.shutdown()
