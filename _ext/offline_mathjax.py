"""Serve MathJax from the built book itself instead of a CDN.

Sphinx loads MathJax from a CDN by default, so a book opened offline shows raw LaTeX. This
extension points `mathjax_path` at MathJax 3's `tex-svg.js` (SVG output: no web fonts to fetch)
and copies it, with the folders MathJax loads on demand from beside it (TeX extensions such as
`\\boldsymbol`, the menu, accessibility), into the build's `_static/mathjax/`. The files come from
the PyPI package `django-static-mathjax` (MathJax 3.2.2's browser build, Apache-2.0; it needs no
Django). Without that package the build stops: it never falls back to the CDN.
"""
from importlib import metadata
from pathlib import Path

from sphinx.errors import ConfigError
from sphinx.util.fileutil import copy_asset

PACKAGE = "django-static-mathjax"
SCRIPT = "tex-svg.js"


def mathjax_folder() -> Path:
    """The folder of MathJax's browser build (`es5/`) in the installed package."""
    try:
        folder = Path(metadata.distribution(PACKAGE).locate_file("mathjax/static/mathjax/es5"))
    except metadata.PackageNotFoundError:
        folder = None
    if folder is None or not (folder / SCRIPT).is_file():
        raise ConfigError(f"offline_mathjax: MathJax 3 ({SCRIPT}) not found; install the PyPI package "
                          f"`{PACKAGE}` (it is in requirements.txt). The book does not use the MathJax CDN.")
    return folder


def use_local_mathjax(app, config):
    mathjax_folder()  # fail before any chapter executes
    config.mathjax_path = f"mathjax/{SCRIPT}"  # relative: served from _static/


def copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        source, target = mathjax_folder(), Path(app.outdir) / "_static" / "mathjax"
        copy_asset(str(source / SCRIPT), str(target))
        for folder in (f for f in source.iterdir() if f.is_dir()):
            copy_asset(str(folder), str(target / folder.name))


def setup(app):
    app.connect("config-inited", use_local_mathjax, priority=900)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
