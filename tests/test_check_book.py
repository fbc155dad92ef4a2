"""The book checker (tools/check_book.py), the book's table style and its launch files (issue 26, parts 2, 4, 6-8).

The checks run here on small hand-made pages; tests/test_book.py runs them on the smoke book.
The browser checks run where Chromium is installed and are skipped elsewhere.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_book", ROOT / "tools" / "check_book.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["check_book"] = mod
    spec.loader.exec_module(mod)
    return mod


CB = _load_checker()
needs_chromium = pytest.mark.skipif(CB.find_browser() is None, reason="no Chromium (apt-get install chromium)")


def _page(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>"


def _book(tmp_path: Path, pages: dict[str, str]) -> Path:
    html = tmp_path / "html"
    for name, text in {"index.html": _page("<p>home</p>"), **pages}.items():
        (html / name).parent.mkdir(parents=True, exist_ok=True)
        (html / name).write_text(text)
    return html


def _checks(findings) -> set[tuple[str, str]]:
    return {(f.page, f.check) for f in findings}


def test_html_checks_find_each_defect_and_pass_a_clean_page(tmp_path):
    html = _book(tmp_path, {
        "clean.html": _page('<h2 id="s">Section</h2><p>Text with <code>`code`</code> and <a href="#s">a link</a>, '
                            '<a href="other/b.html#x">another</a>, <a href="https://example.org/#nowhere">out</a>.</p>'
                            '<pre>``` fenced ```</pre><script>var s = "`{glue:text}`";</script>'
                            '<table><tbody><tr><th>network</th><td>1</td></tr></tbody></table>'),
        "other/b.html": _page('<p id="x">x</p>'),
        # chapter 11's defect: a glue role inside a code span is printed raw
        "glue.html": _page("<p><code>bi-core ingest --atlas {glue:text}`atlas_name` --out</code> read it; "
                           "{numref}`fig-x` too</p>"),
        # chapter 7's defect: a glued sentence that carries Markdown backticks
        "ticks.html": _page("<p>measured on this cohort yet (`bench/bench_presets.py`).</p>"),
        "links.html": _page('<p><a href="other/b.html#missing">a</a> <a href="gone.html">b</a> '
                            '<a href="#here">c</a></p>'),
        "tables.html": _page("<table><thead><tr><th></th><th>step</th></tr></thead><tbody>"
                             "<tr><th>0</th><td>a</td></tr><tr><th>1</th><td>b</td></tr></tbody></table>",
                             head="<style>#T th { max-width: 9em; overflow-wrap: anywhere; }</style>"),
        "cdn.html": _page("<p>\\(W\\)</p>", head='<script src="https://cdn.example.org/mathjax/tex-chtml.js"></script>'),
    })
    found = CB.check_html(html)
    got = _checks(found)
    assert not {c for p, c in got if p in ("clean.html", "other/b.html", "index.html")}, found
    assert ("glue.html", "raw-role") in got and ("ticks.html", "backtick") in got
    assert sum(f.check == "raw-role" and f.page == "glue.html" for f in found) == 2      # {glue:text} and {numref}
    msgs = {f.detail for f in found if f.page == "links.html"}
    assert any("#missing" in m for m in msgs) and any("gone.html" in m for m in msgs) and any("'here'" in m for m in msgs)
    assert {("tables.html", "mid-word-headers"), ("tables.html", "index-column"), ("cdn.html", "remote-script")} <= got


def test_main_reports_and_fails_on_findings_and_skips_the_browser_with_a_message(tmp_path, capsys, monkeypatch):
    html = _book(tmp_path, {"ticks.html": _page("<p>a `b` c</p>")})
    assert CB.main([str(html), "--browser", "off"]) == 1
    out, err = capsys.readouterr()
    assert "ticks.html: backtick" in out and "1 finding(s)" in err
    (html / "ticks.html").write_text(_page("<p>a <code>b</code> c</p>"))
    monkeypatch.setattr(CB, "find_browser", lambda: None)
    assert CB.main([str(html), "--browser", "auto"]) == 0
    assert "SKIPPED" in capsys.readouterr().err
    assert CB.main([str(html), "--browser", "required"]) == 2
    assert CB.main([str(tmp_path / "nothing")]) == 2


@needs_chromium
def test_browser_checks_measure_overflow_narrow_cells_small_images_and_raw_maths(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8, 2), dpi=100)      # 800 px wide
    fig.text(0.5, 0.5, "text", ha="center")
    fig.savefig(tmp_path / "fig.png")
    plt.close(fig)
    html = _book(tmp_path, {
        "bad.html": _page('<table><thead><tr><th style="overflow-wrap: anywhere; width: 1em">decoder</th></tr></thead>'
                          '<tbody><tr><td>1</td></tr></tbody></table>'
                          '<table><tbody><tr><td style="width: 1px">1.5e-27</td></tr></tbody></table>'
                          '<div style="width: 700px">wide</div><img src="fig.png" style="width: 300px">'
                          '<p>maths \\(W\\) left raw</p>'),
        "good.html": _page('<table class="bi-table"><thead><tr><th>decoder</th></tr></thead><tbody><tr><td>1</td></tr>'
                           '<tr><td style="width: 1px">between-network</td></tr></tbody></table><div style="overflow-x: auto"><div style="width: 700px">scrolls</div></div>'
                           '<img src="fig.png" style="max-width: 100%">'),
    })
    (html / "fig.png").write_bytes((tmp_path / "fig.png").read_bytes())
    found = CB.check_browser(html, CB.find_browser(), widths=(1280, 400), pages=["bad.html", "good.html"],
                             progress=False)
    got = {(f.page, f.check, f.detail.split(":")[0]) for f in found}
    assert any(p == "bad.html" and c == "page-overflow" and d.startswith("at 400 px") for p, c, d in got), found
    assert not any(c == "page-overflow" and d.startswith("at 1280 px") for p, c, d in got), found
    assert ("bad.html", "narrow-cell", "at 1280 px") in got and ("bad.html", "small-image", "at 1280 px") in got
    narrow = " ".join(f.detail for f in found if f.check == "narrow-cell")
    assert '"decoder"' in narrow and "overflow-wrap: anywhere" in narrow and '"1.5e-27"' in narrow
    assert ("bad.html", "raw-maths", "at 1280 px") in got
    # the image check is made at the widest width only: on a phone every figure is scaled to the screen
    assert not any(c == "small-image" and d.startswith("at 400") for p, c, d in got)
    assert not [f for f in found if f.page == "good.html"], found


def test_show_table_headers_wrap_between_words_and_text_reads_left():
    import pandas as pd

    from bi_core.nbutils import BADGES, badge, show_table, with_badge

    df = pd.DataFrame({"mask.strategy": ["network", "random tokens"], "decoder": [0.91234, 1.0]})
    text = show_table(df, classes="bi-scorecard").to_html()
    assert "overflow-wrap: anywhere" not in text and "max-width: 9em" not in text
    assert "overflow-wrap: normal" in text and 'class="bi-table bi-scorecard"' in text
    # text left, numbers right; numbers and short codes never wrap at a hyphen
    assert re.search(r"td\.col0 \{\s*text-align: left;\s*\}", text)
    assert re.search(r"td\.col1 \{\s*white-space: nowrap;\s*\}", text)
    show_table(pd.DataFrame([[1, "a"]], columns=["x", "x"]))                     # repeated headers are fine
    assert "0.912" in text and not re.search(r"<th[^>]*>\s*0\s*</th>", text)   # 3 digits, no index
    assert badge("reproduced") == '<span class="bi-badge bi-badge-yes">reproduced</span>'
    assert with_badge("<b>not reproduced</b><br>VIS rank 3", "not reproduced") == \
        '<span class="bi-badge bi-badge-no">not reproduced</span><br>VIS rank 3'
    with pytest.raises(ValueError, match="does not open with its verdict"):
        with_badge("<b>reproduced</b>", "not reproduced")
    # every badge has a colour in the book's style sheet, and the scorecard's legend uses the same classes
    css = (ROOT / "book" / "_static" / "bi_core.css").read_text()
    legend = (ROOT / "notebooks" / "00_scorecard.ipynb").read_text()
    from bi_core.analysis.claims import VERDICTS

    for verdict in VERDICTS:
        assert f".{BADGES[verdict]} " in css and f'{BADGES[verdict]}\\">{verdict}<' in legend, verdict


def test_source_commit_names_the_checkout_or_says_unknown(tmp_path):
    from bi_core.nbutils import source_commit

    assert re.fullmatch(r"[0-9a-f]{12}( \+ uncommitted changes)?", source_commit()) or \
        source_commit().startswith("unknown")
    assert source_commit(tmp_path).startswith("unknown")


def test_book_config_serves_mathjax_and_the_style_sheet_and_names_one_repository_url():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = cfg["sphinx"]["config"]
    assert "://" not in sphinx["mathjax_path"]                       # served with the book: maths render offline
    ext = cfg["sphinx"]["local_extensions"]
    assert all((ROOT / path / f"{name}.py").is_file() for name, path in ext.items())
    for css in sphinx["html_css_files"]:
        assert any((ROOT / d / css).is_file() for d in sphinx["html_static_path"]), css
    url = cfg["repository"]["url"]
    assert url.startswith("https://")
    # one setting: the URL is written nowhere else; README and CONTRIBUTING say where it is
    for doc in ("README.md", "CONTRIBUTING.md"):
        text = (ROOT / doc).read_text()
        assert "repository: url:" in text and "BI_CORE_REPOSITORY_URL" in text, doc
    assert url not in (ROOT / "README.md").read_text()


def test_mathjax_is_copied_from_the_installed_package(tmp_path):
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import bi_core_book
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    es5 = bi_core_book.mathjax_es5()
    assert all((es5 / part).exists() for part in bi_core_book.MATHJAX_PARTS)


def test_binder_environment_is_the_books_with_cpu_torch():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lines = [ln.split("#")[0].strip() for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert "-c ../constraints.txt" in lines and (ROOT / "constraints.txt").is_file()
    names = {canonicalize_name(ln) for ln in lines if not ln.startswith("-")}
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(r).name) for r in proj["dependencies"] + proj["optional-dependencies"]["book"]}
    assert names == declared
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    post = ROOT / "binder" / "postBuild"
    assert "pip install --no-cache-dir --no-deps -e ." in post.read_text() and post.stat().st_mode & 0o111
