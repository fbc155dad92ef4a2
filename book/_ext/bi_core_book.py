"""Sphinx extension of the book (``_config.yml``: ``sphinx: local_extensions``).

- **Maths offline.** MathJax is served with the book: ``mathjax_path`` (``_config.yml``) names
  ``mathjax/tex-mml-chtml.js`` under ``_static``, and this extension copies MathJax 3 there
  from the ``django-static-mathjax`` package (a pinned dependency of the ``book`` extra; it
  brings MathJax's files only). Nothing is fetched from a CDN while the book is read.
- **One repository URL.** ``repository.url`` in ``_config.yml`` is the setting that the
  repository button and the Binder/Colab launch buttons use; ``BI_CORE_REPOSITORY_URL`` in the
  environment overrides it for one build (``BI_CORE_REPOSITORY_URL=https://github.com/you/bi_core make book``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

#: What the book's pages load from MathJax's ``es5`` directory: the combined TeX/MathML → CommonHTML
#: component, the TeX extensions it autoloads (``\boldsymbol`` ...), its fonts, its menu and accessibility parts.
MATHJAX_PARTS = ("tex-mml-chtml.js", "input/tex/extensions", "input/mml", "output/chtml", "ui", "a11y")
ENV_URL = "BI_CORE_REPOSITORY_URL"


def mathjax_es5() -> Path:
    """MathJax 3's ``es5`` directory as installed by ``django-static-mathjax``, with a fix when it is missing."""
    try:
        import mathjax  # django-static-mathjax: static files only, it needs no Django to be copied
    except ImportError:
        raise ConfigError("the book serves MathJax itself (maths must render offline) and needs the package "
                          "django-static-mathjax: run `make env` (or pip install -c constraints.txt "
                          "django-static-mathjax)") from None
    es5 = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise ConfigError(f"{es5} holds no tex-mml-chtml.js: reinstall django-static-mathjax")
    return es5


def _settings(app: Sphinx, config: Config) -> None:
    path = str(config.mathjax_path or "")
    if path and "://" not in path and not path.startswith("//"):
        mathjax_es5()  # fail at the start of the build, not after an hour, when MathJax is missing
    url = os.environ.get(ENV_URL, "").strip()
    if url:
        opts = dict(config.html_theme_options or {})
        opts["repository_url"] = url
        config.html_theme_options = opts


def _copy_mathjax(app: Sphinx, exc: Exception | None) -> None:
    path = str(app.config.mathjax_path or "")
    if exc is not None or app.builder.format != "html" or "://" in path or not path:
        return
    es5, dst = mathjax_es5(), Path(app.outdir) / "_static" / Path(path).parent
    for part in MATHJAX_PARTS:
        src = es5 / part
        if src.is_dir():
            shutil.copytree(src, dst / part, dirs_exist_ok=True)
        else:
            (dst / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / part)
    if not (Path(app.outdir) / "_static" / path).is_file():
        raise ConfigError(f"mathjax_path {path!r} names no file of MathJax's es5 directory")


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _settings)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
