"""Check the built book as a reader sees it (issue 26, parts 6 and 8).

    python tools/check_book.py [HTML_DIR] [--browser {auto,required,off}] [--widths 1280,400]

Two kinds of checks, each finding one line ``page: check: detail``; the exit status is 1
when there is any finding, 0 otherwise (2 when ``--browser required`` finds no browser).

On the HTML files (pure Python, always run):

- ``raw-role``: a MyST role printed as text (``{glue:text}`` inside a code span, an unknown role);
- ``backtick``: a literal backtick in the text outside code (a glued string carrying Markdown);
- ``missing-anchor`` / ``missing-page``: an internal link whose page or ``#anchor`` is not there;
- ``mid-word-headers``: a table style that breaks headers inside words (``overflow-wrap: anywhere``);
- ``index-column``: a table whose row headers are pandas' default index (0, 1, 2 ...);
- ``remote-script``: a script fetched from the network (MathJax from a CDN: raw maths offline).

In headless Chromium (the OS package; ``chromium``, ``chromium-browser``, ``chromium-headless-shell``
or ``google-chrome`` on ``PATH``, or ``$CHROMIUM``), every page at every width (default 1280 and
400 CSS px), with the network switched off:

- ``page-overflow``: the page scrolls sideways; the widest elements that stick out are named;
- ``narrow-cell``: a table cell narrower than its longest word (a header broken as "deco der"); a
  word may wrap after a hyphen, dash or slash as browsers wrap it, a number or a date may not;
- ``small-image``: an image shown below 60 % of its natural width (checked at the widest width
  only: on a phone every figure is scaled to the screen);
- ``raw-maths``: ``\\(`` or ``$$`` left in the text after the page loaded (MathJax did not run);
- ``raw-role`` / ``backtick``: as above, on the text the browser shows.

The browser checks inject a measuring script into a copy of each page, load it in an
iframe of the width under test (a headless window is at least 500 px wide) with ``--dump-dom``
and read the script's JSON back from the DOM, so they need nothing but the browser. Without a browser they are skipped with a message (``--browser auto``).
"""

from __future__ import annotations

import argparse
import html as _html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: A MyST role that survived into the page: ``{glue:text}``, ``{numref}``, ``{cite:p}`` ...
RAW_ROLE = re.compile(r"\{(?:glue(?::[a-z]+)?|numref|ref|doc|cite(?::[a-z]+)?|eq|term|download)\}")
RAW_GLUE = re.compile(r"\{glue(?::[a-z]+)?\}")
#: Elements whose text is code: backticks there are meant.
CODE_TAGS = {"code", "pre", "kbd", "samp", "tt"}
#: Elements whose content is not shown text.
HIDDEN_TAGS = {"script", "style", "template", "noscript", "textarea"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
#: Table styles that break words anywhere (headers read "deco der").
MID_WORD = re.compile(r"overflow-wrap\s*:\s*anywhere|word-break\s*:\s*break-all")
IMAGE_MIN_SCALE = 0.6


@dataclass(frozen=True)
class Finding:
    """One problem on one page: ``page`` (relative to the HTML root), ``check`` (its name), ``detail``."""

    page: str
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.check}: {self.detail}"


def _context(text: str, start: int, end: int, width: int = 40) -> str:
    return " ".join(text[max(0, start - width):end + width].split())


class _Page(HTMLParser):
    """One page's ids, links, visible text (code and prose apart), styles, scripts and tables."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.prose: list[str] = []      # shown text outside code
        self.code: list[str] = []       # shown text inside code
        self.tables: list[list[str]] = []   # per table: the text of its row-heading cells
        self._stack: list[str] = []
        self._row_heading: list[str] | None = None
        self._first_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key) and (key == "id" or tag == "a"):
                self.ids.add(str(a[key]))
        if tag == "a" and a.get("href") is not None:
            self.links.append(str(a["href"]))
        if tag == "script" and a.get("src"):
            self.scripts.append(str(a["src"]))
        if a.get("style"):
            self.styles.append(str(a["style"]))
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self._first_cell = True
        elif tag in ("td", "th"):
            # a row header: the first cell of a body row, when it is a <th>
            if tag == "th" and self._first_cell and self.tables and "tbody" in self._stack:
                self._row_heading = []
            self._first_cell = False
        if tag not in VOID_TAGS:
            self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "th" and self._row_heading is not None and self.tables:
            self.tables[-1].append("".join(self._row_heading).strip())
            self._row_heading = None
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if "style" in self._stack:
            self.styles.append(data)
        if any(t in HIDDEN_TAGS for t in self._stack):
            return
        if self._row_heading is not None:
            self._row_heading.append(data)
        (self.code if any(t in CODE_TAGS for t in self._stack) else self.prose).append(data)


def text_findings(page: str, prose: str, code: str = "") -> list[Finding]:
    """``raw-role`` and ``backtick`` findings of a page's shown text (``prose``: outside code)."""
    out = []
    # in code, ``{ref}`` may be a Python f-string: only glue roles are never meant there
    for where, pattern in ((prose, RAW_ROLE), (code, RAW_GLUE)):
        for m in pattern.finditer(where):
            out.append(Finding(page, "raw-role", f"{m.group(0)} printed as text: …{_context(where, m.start(), m.end())}…"))
    for m in re.finditer(r"`+[^`]{0,200}?`+|`+", prose):   # a code span left as text counts once
        out.append(Finding(page, "backtick", f"literal backtick: …{_context(prose, m.start(), m.end())}…"))
    return out


def _parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    p.close()
    return p


def html_pages(html_dir: Path) -> list[Path]:
    """The book's pages: every ``.html`` except Sphinx's generated index, search and sources."""
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return sorted(p for p in html_dir.rglob("*.html")
                  if p.name not in skip and not p.relative_to(html_dir).parts[0].startswith("_"))


def check_html(html_dir: Path) -> list[Finding]:
    """Every check that reads the HTML files only (see the module docstring)."""
    html_dir = Path(html_dir)
    parsed: dict[Path, _Page] = {}

    def page_of(path: Path) -> _Page | None:
        path = path.resolve()
        if path not in parsed:
            parsed[path] = _parse(path) if path.is_file() else None  # type: ignore[assignment]
        return parsed[path]

    out: list[Finding] = []
    for path in html_pages(html_dir):
        rel = path.relative_to(html_dir).as_posix()
        p = page_of(path)
        assert p is not None
        out += text_findings(rel, " ".join("".join(p.prose).split()), " ".join("".join(p.code).split()))
        for href in sorted(set(p.links)):
            u = urlsplit(href)
            if u.scheme or u.netloc or href.startswith("mailto:"):
                continue
            target = path if not u.path else (path.parent / unquote(u.path))
            if target.is_dir():
                target = target / "index.html"
            if target.suffix != ".html":
                if not target.exists():
                    out.append(Finding(rel, "missing-page", f"link to {href!r}: no such file"))
                continue
            tp = page_of(target)
            if tp is None:
                out.append(Finding(rel, "missing-page", f"link to {href!r}: no such page"))
            elif u.fragment and unquote(u.fragment) not in tp.ids:
                out.append(Finding(rel, "missing-anchor", f"link to {href!r}: no id {u.fragment!r} on that page"))
        if any(MID_WORD.search(s) for s in p.styles):
            out.append(Finding(rel, "mid-word-headers", "a table style breaks words anywhere "
                                                        "(overflow-wrap: anywhere / word-break: break-all)"))
        for i, heads in enumerate(p.tables):
            if len(heads) >= 2 and heads == [str(k) for k in range(len(heads))]:
                out.append(Finding(rel, "index-column", f"table {i + 1} shows pandas' default index 0…{len(heads) - 1}"))
        for src in p.scripts:
            if urlsplit(src).scheme in ("http", "https") or src.startswith("//"):
                out.append(Finding(rel, "remote-script", f"{src} is fetched from the network"))
    return out


# --------------------------------------------------------------------------- the browser checks

#: Runs in the page after it loaded (and MathJax typeset): measures the layout and writes JSON into the DOM.
MEASURE_JS = r"""
(function () {
  function words(text) { return (text || "").split(/\s+/).filter(function (w) { return w.length > 0; }); }
  function visible(el) {
    var r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return false;
    var s = getComputedStyle(el);
    return s.visibility !== "hidden" && s.display !== "none";
  }
  function clipped(el) {   // inside a box that scrolls or clips sideways: it cannot widen the page
    for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      var ox = getComputedStyle(p).overflowX;
      if (ox === "auto" || ox === "scroll" || ox === "hidden" || ox === "clip") return true;
    }
    return false;
  }
  function describe(el) {
    var d = el.tagName.toLowerCase();
    if (el.id) d += "#" + el.id;
    if (el.className && typeof el.className === "string") d += "." + el.className.trim().split(/\s+/).slice(0, 2).join(".");
    var t = (el.innerText || el.getAttribute("src") || "").trim().replace(/\s+/g, " ");
    return d + (t ? " \"" + t.slice(0, 50) + "\"" : "");
  }
  var NUMBER = /^[(\[]?[−+-]?[\d.,]+(e[−+-]?\d+)?%?[)\],;]*$|^\d{4}-\d\d-\d\d/i;
  var canvas = document.createElement("canvas").getContext("2d");
  function wordWidth(el, w) {
    var s = getComputedStyle(el);
    canvas.font = s.fontStyle + " " + s.fontWeight + " " + s.fontSize + " " + s.fontFamily;
    return canvas.measureText(w).width;
  }
  function measure() {
    var vw = document.documentElement.clientWidth;
    var res = {width: window.innerWidth, client: vw, scroll: document.documentElement.scrollWidth,
               overflow: [], narrow: [], images: [], text: document.body.innerText};
    if (res.scroll > vw + 1) {
      var all = document.body.querySelectorAll("*");
      for (var i = 0; i < all.length && res.overflow.length < 5; i++) {
        var el = all[i], r = el.getBoundingClientRect();
        if (r.right > vw + 1 && visible(el) && !clipped(el) && !(el.parentElement && el.parentElement.getBoundingClientRect().right > vw + 1))
          res.overflow.push(describe(el) + " reaches " + Math.round(r.right) + " px");
      }
    }
    var cells = document.querySelectorAll("table td, table th");
    for (var j = 0; j < cells.length; j++) {
      var c = cells[j];
      if (!visible(c) || c.closest("pre, code")) continue;
      var s = getComputedStyle(c);
      var inner = c.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
      var longest = "", lw = 0, ws = words(c.innerText);
      for (var k = 0; k < ws.length; k++) {
        // a word may wrap after a hyphen, dash or slash ("between-/network"), as browsers do; a number or
        // a date never ("1.5e-/27" misreads), nor a word with no such break ("deco/der")
        var pieces = NUMBER.test(ws[k]) ? [ws[k]] : ws[k].split(/(?<=[-‐–—\/])/);
        for (var q = 0; q < pieces.length; q++) {
          var w = wordWidth(c, pieces[q]);
          if (w > lw) { lw = w; longest = pieces[q]; }
        }
      }
      if (lw > inner + 1.5) {
        var why = [];   // the style that let the cell shrink below its word, to say where to fix it
        if (s.overflowWrap !== "normal") why.push("overflow-wrap: " + s.overflowWrap);
        if (s.wordBreak !== "normal") why.push("word-break: " + s.wordBreak);
        var t = c.closest("table"), ts = getComputedStyle(t);
        if (ts.tableLayout === "fixed") why.push("table-layout: fixed");
        if (ts.maxWidth !== "none") why.push("table max-width: " + ts.maxWidth);
        res.narrow.push("\"" + longest + "\" is " + Math.round(lw) + " px wide in a cell of " + Math.round(inner) + " px" +
                        (why.length ? " (" + why.join(", ") + ")" : ""));
      }
    }
    var imgs = document.querySelectorAll("img");
    for (var m = 0; m < imgs.length; m++) {
      var im = imgs[m];
      if (!visible(im) || !im.naturalWidth || im.naturalWidth < 200) continue;   // icons and logos
      res.images.push({src: im.getAttribute("src"), shown: im.getBoundingClientRect().width, natural: im.naturalWidth});
    }
    // the page runs in an iframe of the width under test (a browser window is at least 500 px wide)
    if (window.parent !== window) window.parent.postMessage({biCheck: JSON.stringify(res)}, "*");
  }
  function start() {
    var ready = (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise : Promise.resolve();
    ready.then(function () { setTimeout(measure, 300); }, function () { setTimeout(measure, 300); });
  }
  var started = false;
  function once() { if (!started) { started = true; start(); } }
  if (document.readyState === "complete") once(); else window.addEventListener("load", function () { setTimeout(once, 300); });
  setTimeout(once, 8000);   // a resource that never loads must not keep the page from being measured
})();
"""
#: The page under test in an iframe exactly ``width`` CSS px wide; the measurement comes back by message.
FRAME = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>html, body {{ margin: 0; }}
iframe {{ border: 0; width: {width}px; height: {height}px; display: block; }}</style></head><body>
<iframe src="{src}"></iframe><script>
window.addEventListener("message", function (e) {{
  if (!e.data || !e.data.biCheck || document.getElementById("bi-check-result")) return;
  var out = document.createElement("pre"); out.id = "bi-check-result"; out.textContent = e.data.biCheck;
  document.body.appendChild(out);
}});
</script></body></html>
"""
RESULT = re.compile(r'<pre id="bi-check-result">(.*?)</pre>', re.S)
BROWSERS = ("chromium", "chromium-browser", "chromium-headless-shell", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """A headless-capable Chromium: ``$CHROMIUM``, else the first of :data:`BROWSERS` on ``PATH``."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() or shutil.which(env) else None
    return next((b for b in map(shutil.which, BROWSERS) if b), None)


def render(browser: str, page: Path, width: int, profile: Path, height: int = 900, timeout: float = 120) -> dict:
    """Load ``page`` (a copy with :data:`MEASURE_JS` injected) at ``width`` CSS px; the measurement as a dict."""
    frame = page.with_name(f".bi-check-frame-{width}.html")
    frame.write_text(FRAME.format(width=width, height=height, src=page.name), encoding="utf-8")
    cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
           "--no-first-run", "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}",
           # offline, as a reader without network: a CDN script fails here as it would there
           "--host-resolver-rules=MAP * ~NOTFOUND", "--allow-file-access-from-files",
           f"--window-size={width + 40},{height}", "--force-device-scale-factor=1", "--virtual-time-budget=15000",
           "--run-all-compositor-stages-before-draw", "--dump-dom", frame.resolve().as_uri()]
    for _ in range(3):   # a loaded machine now and then dumps the DOM before the page was measured: retry
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        m = RESULT.search(proc.stdout)
        if m:
            return json.loads(_html.unescape(m.group(1)))
    raise RuntimeError(f"{browser} rendered no measurement of {page.name} at {width} px in 3 tries")


def browser_findings(rel: str, width: int, res: dict, check_images: bool) -> list[Finding]:
    """The findings of one page's measurement at one width."""
    at = f"{width} px"
    if abs(res["width"] - width) > 1:
        return [Finding(rel, "not-measured", f"the page was {res['width']} px wide, not {width} px")]
    out = [Finding(rel, "page-overflow", f"at {at} the page is {res['scroll']} px wide (viewport {res['client']}): "
                                         + "; ".join(res["overflow"] or ["no single element found"]))
           ] if res["scroll"] > res["client"] + 1 else []
    for n in sorted(set(res["narrow"])):
        out.append(Finding(rel, "narrow-cell", f"at {at}: {n}"))
    if check_images:
        for im in res["images"]:
            scale = im["shown"] / im["natural"]
            if scale < IMAGE_MIN_SCALE:
                out.append(Finding(rel, "small-image", f"at {at}: {im['src']} shown at {scale:.2f} of its width "
                                                       f"({im['shown']:.0f} of {im['natural']} px)"))
    text = res["text"]
    for m in re.finditer(r"\\\(|\\\[|\$\$", text):
        out.append(Finding(rel, "raw-maths", f"at {at}: maths not typeset: …{_context(text, m.start(), m.end())}…"))
    # the shown text mixes code and prose: only roles are checked here (backticks: check_html)
    out += [f for f in text_findings(rel, "", " ".join(text.split())) if f.check == "raw-role"]
    return out


def check_browser(html_dir: Path, browser: str, widths: tuple[int, ...] = (1280, 400),
                  pages: list[str] | None = None, progress: bool = True) -> list[Finding]:
    """Render every page (or ``pages``, relative paths) at every width; see the module docstring."""
    html_dir = Path(html_dir)
    out: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="bi-check-book-") as tmp:
        copy = Path(tmp) / "html"
        shutil.copytree(html_dir, copy)
        todo = [copy / p for p in pages] if pages else html_pages(copy)
        for path in todo:
            rel = path.relative_to(copy).as_posix()
            text = path.read_text(encoding="utf-8")
            tag = f"<script>{MEASURE_JS}</script>"
            path.write_text(text.replace("</body>", tag + "</body>", 1) if "</body>" in text else text + tag,
                            encoding="utf-8")
            for width in widths:
                if progress:
                    print(f"  {rel} at {width} px", file=sys.stderr, flush=True)
                try:
                    res = render(browser, path, width, Path(tmp) / "profile")
                except RuntimeError as e:
                    out.append(Finding(rel, "not-measured", str(e)))
                    continue
                out += browser_findings(rel, width, res, check_images=width == max(widths))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Check the built book: raw roles, backticks, links, tables, "
                                             "and (in headless Chromium) overflow, narrow cells, small images, maths.")
    ap.add_argument("html_dir", nargs="?", default="_build/html", help="the built HTML (default: _build/html)")
    ap.add_argument("--browser", choices=("auto", "required", "off"), default="auto",
                    help="auto: render in Chromium when installed, else skip those checks with a message; "
                         "required: fail without Chromium; off: HTML checks only")
    ap.add_argument("--widths", default="1280,400", help="viewport widths in CSS px, comma-separated (default 1280,400)")
    ap.add_argument("--page", action="append", default=None, help="check only this page (relative path; repeatable)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    html_dir = Path(args.html_dir)
    if not (html_dir / "index.html").is_file():
        print(f"check-book: {html_dir} holds no built book (no index.html); build it with `make book` "
              f"(or `make book-smoke`) or pass the HTML directory", file=sys.stderr)
        return 2
    findings = check_html(html_dir)
    if args.page:
        findings = [f for f in findings if f.page in args.page]
    if args.browser != "off":
        browser = find_browser()
        if browser is None:
            msg = ("check-book: no Chromium found (install the OS package: apt-get install chromium; or set "
                   "CHROMIUM=/path/to/chrome): the browser checks (overflow, narrow cells, small images, maths) "
                   "were SKIPPED; the HTML checks ran")
            print(msg, file=sys.stderr)
            if args.browser == "required":
                return 2
        else:
            widths = tuple(int(w) for w in args.widths.split(","))
            findings += check_browser(html_dir, browser, widths, args.page, progress=not args.quiet)
    for f in findings:
        print(f)
    by_check: dict[str, int] = {}
    for f in findings:
        by_check[f.check] = by_check.get(f.check, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(by_check.items())) or "none"
    print(f"check-book: {len(findings)} finding(s) in {html_dir} ({summary})", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
