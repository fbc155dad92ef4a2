"""End to end: `bi-core reproduce --preset smoke` builds the whole book, deterministically.

The slowest part of the suite (a few minutes on 2 cores): the session's one smoke book
(``smoke_book`` in conftest.py, built on the session's smoke cohorts and run) synthesizes,
pretrains, runs every analysis and notebook and builds the HTML; every test here reads it.
Determinism: two steps re-run from scratch in a second directory give the same tables, and a
chapter on them the same glued numbers.
"""

from __future__ import annotations

import ast
import html
import json
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from bi_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
GLUE_REF = re.compile(r"\{glue:text\}`([A-Za-z0-9_]+)(?::([^`]*))?`")
#: What a raw cell output looks like: a number, a quoted string, True/False/None.
BARE = re.compile(r"-?[\d.,]+(e[+-]?\d+)?|'.*'|\".*\"|True|False|None", re.S)
#: Chapters whose tables are not yet shown with bi_core.nbutils.show_table (their headers are raw
#: column names); remove a chapter once converted — the test then checks it (strict xfail).
RAW_TABLES: set[str] = set()


class _Outputs(HTMLParser):
    """The cell output areas of a built page: their text and their table header cells."""

    def __init__(self) -> None:
        super().__init__()
        self.areas: list[dict[str, list[str]]] = []
        self._depth = 0          # div depth inside the current output area (0: outside)
        self._th: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if tag == "div" and self._depth == 0 and "cell_output" in cls.split():
            self.areas.append({"text": [], "th": [], "media": []})
            self._depth = 1
        elif self._depth:
            if tag == "div":
                self._depth += 1
            elif tag == "th":
                self._th = []
            elif tag in ("img", "table", "svg"):
                self.areas[-1]["media"].append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self._depth:
            return
        if tag == "div":
            self._depth -= 1
        elif tag == "th" and self._th is not None:
            self.areas[-1]["th"].append(" ".join("".join(self._th).split()))
            self._th = None

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.areas[-1]["text"].append(data)
            if self._th is not None:
                self._th.append(data)


def _output_areas(page: Path) -> list[dict[str, list[str]]]:
    parser = _Outputs()
    parser.feed(page.read_text())
    return parser.areas


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [c["file"] for c in part["chapters"]]
    return files


def _glued(nb_path: Path) -> dict[str, str]:
    """name → text/plain of every glued value of an executed notebook."""
    nb = json.loads(nb_path.read_text())
    out = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook")
            if meta:
                data = o.get("data", {})
                txt = data.get("application/papermill.record/text/plain")
                if txt is not None:
                    out[meta["name"]] = "".join(txt) if isinstance(txt, list) else txt
    return out


def _format(value: str, fmt: str | None) -> str:
    try:
        v = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        v = value
    if isinstance(v, str):
        return v
    return format(v, fmt) if fmt else str(v)


@pytest.fixture(scope="module")
def built(smoke_book):
    """The session's smoke book (conftest.py): ``art/`` and ``_build/html``."""
    return smoke_book


@pytest.mark.slow
def test_every_chapter_page_exists(built):
    html_dir = built / "_build" / "html"
    assert (html_dir / "index.html").is_file()
    for f in _toc_files():
        page = html_dir / f"{f}.html"
        assert page.is_file() and page.stat().st_size > 1000, f


@pytest.mark.slow
def test_figures_present_and_nonempty(built):
    html_dir = built / "_build" / "html"
    n = 0
    for f in _toc_files():
        text = (html_dir / f"{f}.html").read_text()
        for src in re.findall(r'<img[^>]+src="([^"]+)"', text):
            if "_static" in src or src.startswith("http"):
                continue
            img = (html_dir / f).parent / src
            assert img.is_file() and img.stat().st_size > 2000, f"{f}: {src}"
            n += 1
        for fig in re.findall(r'<figure[^>]*id="(fig-[^"]+)"', text):
            block = text[text.index(f'id="{fig}"'):][:4000]
            assert "<img" in block or "<object" in block, f"{f}: figure {fig} has no image"
    assert n >= 25


@pytest.mark.slow
def test_no_errors_in_notebook_outputs(built):
    for nb in (built / "art" / "notebooks").glob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            for o in cell.get("outputs", []):
                assert o.get("output_type") != "error", nb.name
                text = json.dumps(o.get("data", {})) + "".join(o.get("text", []))
                assert "Traceback" not in text, nb.name


@pytest.mark.slow
def test_glued_numbers_appear_in_text(built):
    html_dir = built / "_build" / "html"
    checked = 0
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = html_dir / "notebooks" / f"{nb.stem}.html"
        if not page.is_file():
            continue
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        # Sphinx turns straight quotes into typographic ones
        text = re.sub(r"\s+", " ", text).translate(str.maketrans("‘’“”", "''\"\""))
        values = _glued(built / "art" / "notebooks" / nb.name)
        src = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
        for name, fmt in GLUE_REF.findall(src):
            assert name in values, f"{nb.stem}: {name} is referenced but never glued"
            shown = re.sub(r"\s+", " ", _format(values[name], fmt or None)).strip()
            if shown:
                assert shown in text, f"{nb.stem}: glued {name}={shown!r} not in the page"
                checked += 1
    assert checked >= 60


@pytest.mark.slow
def test_no_bare_values_under_the_code_cells(built):
    """A chapter shows text, figures and tables: never a raw ``2.0``, ``11`` or ``'every window'`` output."""
    html_dir = built / "_build" / "html"
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for area in _output_areas(html_dir / "notebooks" / f"{nb.stem}.html"):
            text = " ".join("".join(area["text"]).split())
            assert area["media"] or not BARE.fullmatch(text), f"{nb.stem}: a bare cell output {text[:60]!r}"


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(p.stem, marks=pytest.mark.xfail(strict=True, reason="raw table headers"))
                                  if p.stem in RAW_TABLES else p.stem
                                  for p in sorted((ROOT / "notebooks").glob("*.ipynb"))])
def test_table_headers_are_readable(built, name):
    """Column and row headers are words (show_table), not raw column names such as auc_ci_low or n_repeats."""
    areas = _output_areas(built / "_build" / "html" / "notebooks" / f"{name}.html")
    raw = sorted({h for a in areas for h in a["th"] if "_" in h})
    assert not raw, f"{name}: table headers {raw[:8]}"


def test_show_table_reads_like_a_table():
    import pandas as pd

    from bi_core.nbutils import format_number, glue, show_table

    s = pd.DataFrame({"feature_set": ["embedding", "FC tangent"], "n_repeats": [5, 5], "auc": [0.734, 0.99612],
                      "auc_ci_low": [0.6123456, 0.98], "auc_ci_high": [0.85, 1.0], "cohens_d": [-0.22, 12345.6]})
    html_text = show_table(s, index="feature_set").to_html()
    heads = _outputs_of(html_text)
    assert heads == ["repeats", "AUC [95 % interval]", "Cohen's d", "feature set", "embedding", "FC tangent"]
    assert "0.734 [0.612, 0.850]" in html_text and "12,346" in html_text and "0.7340" not in html_text
    # no index at all when the rows have no names, codes in row labels read as words
    plain = _outputs_of(show_table(s.drop(columns="feature_set")).to_html())
    assert plain == ["repeats", "AUC [95 % interval]", "Cohen's d"]
    rows = _outputs_of(show_table(pd.DataFrame({"score": ["cdr_sb"], "p_value": [0.5]}), index="score",
                                  rename={"p_value": "p"}).to_html())
    assert rows == ["p", "score", "CDR-SB"]
    assert [format_number(v) for v in (2.7e-24, 0.00123456, 11, 150.0, float("nan"))] == ["2.7e-24", "0.00123", "11",
                                                                                          "150", "–"]
    assert glue("x", 2.0) is None            # a glue on a cell's last line prints nothing


def _outputs_of(html_text: str) -> list[str]:
    parser = _Outputs()
    parser.feed(f'<div class="cell_output">{html_text}</div>')
    return [h for h in parser.areas[0]["th"] if h.strip()]


#: Glued wall times, which differ between two runs with the same seed.
WALL_TIMES = {"build_total_min", "train_min", "tokens_per_s", "build_cpu", "study_minutes"}


def _same_glue(a: Path, b: Path) -> int:
    """Assert that two executed copies of a notebook glue the same values (wall times and figures aside)."""
    ga, gb = _glued(a), _glued(b)
    n = 0
    for k, v in ga.items():
        if k.startswith("fig_") or k in WALL_TIMES:
            continue
        assert gb[k] == v, f"{a.stem}: {k} differs between two runs with the same seed ({v} vs {gb[k]})"
        n += 1
    return n


@pytest.mark.slow
def test_same_seed_same_tables_and_glued_numbers(built, tmp_path, shared_kernel):
    """The shared build against one step re-run with the same seed: the analyses (the tables of chapters 3, 5 and
    6, every model read-out, classifier and mixed model of the synthetic chain) from scratch beside a copy of the
    build's cohorts and pretraining run give the same tables, and chapters 3 and 5 on them the same glued numbers.
    This replaces a second whole build; the other steps have same-seed tests in their own modules (pretraining:
    test_train's resume equals an uninterrupted run; test_synth, test_synth_dynamic, test_routing, test_jivnet,
    test_rwmoe_ssm, test_masking)."""
    import pandas as pd

    from bi_core._io import MARKER
    from bi_core.reproduce import BOOK_PRESETS, NOTEBOOKS, Context, run_notebook

    art, again = built / "art", tmp_path / "again"
    for rel in ("synth", "runs/pretrain"):
        shutil.copytree(art / rel, again / rel)
    shutil.copy2(art / MARKER, again / MARKER)
    assert main(["reproduce", "--preset", "smoke", "--out", str(again), "--steps", "analyses", "--quiet"]) == 0
    skipped = json.loads((again / "timings.json").read_text())["skipped"]
    assert skipped == {"synth": True, "pretrain": True, "analyses": False}     # one step re-ran, on the copies
    tables = sorted(p.name for p in (art / "results").glob("*.tsv"))
    assert len(tables) >= 10 and tables == sorted(p.name for p in (again / "results").glob("*.tsv"))
    for name in tables:
        a, b = (pd.read_csv(d / "results" / name, sep="\t") for d in (art, again))
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)
    ctx = Context(preset=BOOK_PRESETS["smoke"], out=again, book_out=tmp_path, seed=0)
    params = dict(NOTEBOOKS)
    n = 0
    for name in ("03_predictability", "05_classification"):
        # in one kernel, cleared before each chapter: the same numbers as the build's new kernel per chapter
        n += _same_glue(art / "notebooks" / f"{name}.ipynb",
                        run_notebook(name, params[name](ctx), tmp_path / "nb", kernel=shared_kernel))
    assert n >= 90     # about 50 glued values each in the smoke book


@pytest.mark.slow
@pytest.mark.parametrize("name", ["03_predictability", "04_interactions", "05_classification", "06_longitudinal"])
def test_analysis_notebooks_run_without_ground_truth(built, tmp_path, name, shared_kernel):
    """A user's own cohort has no ground_truth.json: the chapters still run, saying so."""
    from bi_core.reproduce import run_notebook

    art = built / "art"
    params = {"suite_dir": str(art / "results"), "eval_cohort": str(art / "synth" / "eval"), "ground_truth": "none",
              "preset": "smoke", "seed": 0}
    nb = run_notebook(name, params, tmp_path, kernel=shared_kernel)
    values = _glued(nb)
    assert values, name
    text = json.dumps(json.loads(nb.read_text())["cells"])
    assert "Traceback" not in text


def test_notebooks_stored_without_outputs_and_parameterized():
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        assert not any(c.get("outputs") for c in cells if c["cell_type"] == "code"), nb.name
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{nb.name} needs exactly one cell tagged 'parameters'"


def _show_table_calls(source: str) -> list[ast.Call]:
    """The ``show_table(...)`` calls of a code cell (IPython ``%``/``!`` lines blanked, so line numbers hold)."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    return [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) or getattr(n.func, "attr", None)) == "show_table"]


def _is_placeholder(call: ast.Call) -> bool:
    """``show_table(pd.DataFrame({"what": [message]}))``: one cell that says why a table is not there."""
    df = call.args[0] if call.args else None
    if not (isinstance(df, ast.Call) and (getattr(df.func, "attr", None) or getattr(df.func, "id", None)) == "DataFrame"
            and len(df.args) == 1 and not df.keywords and isinstance(df.args[0], ast.Dict)):
        return False
    d = df.args[0]
    return len(d.keys) == 1 and d.keys[0] is not None and isinstance(d.values[0], ast.List) and len(d.values[0].elts) == 1


def test_every_book_table_has_a_caption():
    """One table style (issue 26, part 4): every table a notebook shows has a caption (bi_core.css numbers them
    per page); only a one-cell placeholder that says why a table is missing goes without."""
    missing, n = [], 0
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            if cell["cell_type"] != "code":
                continue
            for call in _show_table_calls("".join(cell["source"])):
                n += 1
                if not _is_placeholder(call) and not any(k.arg == "caption" for k in call.keywords):
                    missing.append(f"{nb.name}, cell {i} (id {cell.get('id')}), line {call.lineno}: "
                                   f"{ast.unparse(call)[:100]}")
    assert n, "no show_table call found in notebooks/*.ipynb"
    assert not missing, "show_table(...) without caption= (a placeholder is show_table(pd.DataFrame({what: [why]}))):\n" \
        + "\n".join(missing)


def test_failing_notebook_names_itself(tmp_path):
    from bi_core.errors import BiCoreError
    from bi_core.reproduce import run_notebook

    with pytest.raises(BiCoreError, match=r"notebook 03_predictability failed in cell \d+ \(InputError: parameter suite_dir"):
        run_notebook("03_predictability", {"suite_dir": str(tmp_path / "missing")}, tmp_path)
    # the executed copy the message points to holds the traceback (papermill writes it once, at the end)
    cells = json.loads((tmp_path / "03_predictability.ipynb").read_text())["cells"]
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert any(o["ename"] == "InputError" for o in errors)


def test_failed_step_names_itself_and_its_log(tmp_path):
    """Steps run in worker processes; a failure names the step and shows its log's tail."""
    import bi_core.reproduce as R
    from bi_core.errors import BiCoreError

    ctx = R.Context(preset=R.BOOK_PRESETS["smoke"], out=tmp_path, book_out=tmp_path, seed=0, quiet=True)
    seen = []
    with pytest.raises(BiCoreError, match=r"(?s)step analyses failed \(exit 2\); last lines of .*analyses\.log.*"
                                          r"not a bi_core cohort"):
        R._run_graph(ctx, 2, seen.append, lambda *a: None, [], tmp_path, step_names=["analyses"])
    assert seen == ["analyses"]
    assert not (ctx.results / "step-stamp.json").exists()      # a failed step leaves no stamp


def test_steps_wait_for_their_dependencies():
    import bi_core.reproduce as R
    from bi_core.steps import with_dependencies

    names = list(R.STEPS)
    for n, step in R.STEPS.items():
        assert step.name == n and all(names.index(d) < names.index(n) for d in step.deps), n
    chapters = [n for n, _ in R.NOTEBOOKS if n != "reproducibility"]
    assert set(R.NOTEBOOK_DEPS) == set(chapters)
    for n, deps in R.NOTEBOOK_DEPS.items():
        assert deps and all(d in names for d in deps), n
    assert with_dependencies(["analyses"]) == ["synth", "pretrain", "analyses"]
    # the published book: the default book's cohorts, its synthetic model trained longer; the default's HCP runs
    # are already the long preset (real-full: `real` stays below the quality bar), so the full book keeps them
    from bi_core.runs import preset

    full, default = R.BOOK_PRESETS["full"], R.BOOK_PRESETS["default"]
    assert full.synth == default.synth
    assert preset(full.pretrain).epochs > preset(default.pretrain).epochs
    assert preset(full.pretrain).model == preset(default.pretrain).model
    assert full.pretrain_real == default.pretrain_real == "real-full"
    assert preset("real-full").epochs > preset("real").epochs and preset("real-full").model == preset("real").model
    assert with_dependencies(["lmae-age"]) == ["synth", "masking-study", "lmae-age"]
    # two steps never share a home (each keeps its own stamp there)
    ctx = R.Context(preset=R.BOOK_PRESETS["default"], out=Path("/x"), book_out=Path("/x"), seed=0)
    homes = [s.home(ctx) for s in R.STEPS.values()]
    assert len(set(homes)) == len(homes)
    assert all(not a.is_relative_to(b) for a in homes for b in homes if a != b)


def test_notebooks_start_when_ready_and_reproducibility_runs_last(tmp_path, monkeypatch):
    """Chapters run beside each other; the reproducibility page waits for every other task."""
    import threading

    import bi_core.reproduce as R

    monkeypatch.setattr(R, "STEPS", {})
    monkeypatch.setattr(R, "NOTEBOOK_DEPS", {"a": (), "b": ()})
    log, lock = [], threading.Lock()

    def fake(name, params, out_dir, cwd=None, launcher=None):
        with lock:
            log.append(("start", name))
        time.sleep(0.3)
        with lock:
            log.append(("end", name))
        return out_dir / f"{name}.ipynb"

    monkeypatch.setattr(R, "run_notebook", fake)
    monkeypatch.setattr(R, "Launcher", lambda *a, **kw: type("NoKernels", (), {"close": lambda self: None})())
    ctx = R.Context(preset=R.BOOK_PRESETS["smoke"], out=tmp_path, book_out=tmp_path, seed=0, quiet=True)
    nbs = [(n, lambda c: {}) for n in ("a", "b", "reproducibility")]
    done = []
    executed = R._run_graph(ctx, 2, lambda n: None, lambda n, t0, ran: done.append(n), nbs, tmp_path)
    assert list(executed) == ["a", "b", "reproducibility"]
    assert log[:2] == [("start", "a"), ("start", "b")]           # side by side
    assert log[-2:] == [("start", "reproducibility"), ("end", "reproducibility")]
    assert done[-1] == "notebook reproducibility"


def test_related_preset_sizes_both_related_studies_and_keeps_them_apart(tmp_path, monkeypatch):
    """`--related-preset full` runs the full masking study and lmae-age beside the book's own."""
    import bi_core.reproduce as R
    from bi_core.errors import ConfigError
    from bi_core.related.masking_study import study as MS
    from bi_core.related.masking_study.config import STUDY_PRESETS
    from bi_core.related.rwmoe_ssm import study as RW

    book = R.Context(preset=R.BOOK_PRESETS["default"], out=tmp_path, book_out=tmp_path, seed=0)
    full = R.Context(preset=R.BOOK_PRESETS["default"], out=tmp_path, book_out=tmp_path, seed=0, related="full")
    same = R.Context(preset=R.BOOK_PRESETS["default"], out=tmp_path, book_out=tmp_path, seed=0, related="default")
    assert book.study_preset == same.study_preset == "default"
    assert full.study_preset == "full"
    assert book.study_dir == same.study_dir == tmp_path / "related" / "masking"
    assert full.study_dir == tmp_path / "related" / "masking-full"
    assert full.lmae_dir == tmp_path / "related" / "lmae-full" != book.lmae_dir
    params = dict(R.NOTEBOOKS)
    assert params["08_masking_study"](full)["study_dir"] == str(full.study_dir)
    assert params["09_lmae_rwmoe_ssm"](full)["lmae_dir"] == str(full.lmae_dir)
    # lmae-age reuses the study's runs, so it must train with the same study preset
    # (the masking study's 'real' preset runs on one real cohort and has no lmae-age counterpart)
    for name in RW.LMAE_PRESETS:
        assert RW.lmae_preset(name).study == name and name in STUDY_PRESETS
    for p in R.BOOK_PRESETS.values():
        assert p.related in RW.LMAE_PRESETS
    with pytest.raises(ConfigError, match="related-methods preset 'real'"):
        R.reproduce("smoke", out=tmp_path, related="real")
    # the study preset is part of both steps' keys; the two builds keep separate stamps
    for name in ("masking-study", "lmae-age"):
        assert R.STEPS[name].key(full) != R.STEPS[name].key(book)
        assert R.STEPS[name].stamp_file(full) != R.STEPS[name].stamp_file(book)

    # the steps run what the context asks for
    ran = {}
    monkeypatch.setattr(MS, "run_study", lambda synth, out, cfg, progress: ran.update(study=(out, cfg.name)))
    monkeypatch.setattr(RW, "run_lmae_age", lambda synth, out, cfg, study_dir, progress:
                        ran.update(lmae=(out, cfg.study, study_dir)))
    R.STEPS["masking-study"].run(full)
    R.STEPS["lmae-age"].run(full)
    assert ran["study"] == (full.study_dir, "full")
    assert ran["lmae"] == (full.lmae_dir, "full", full.study_dir)

    # worker processes get the setting through the step spec
    from bi_core.steps import Step

    seen = []
    monkeypatch.setitem(R.STEPS, "probe", Step("probe", lambda c: seen.append(c.related), lambda c: c.out))
    spec = {"preset": "smoke", "out": str(tmp_path), "book_out": str(tmp_path), "seed": 0, "quiet": True,
            "related": "full"}
    assert R._step_main(["--step", "probe", "--spec", json.dumps(spec)]) == 0
    assert seen == ["full"]
    assert "steps.py" in json.loads((tmp_path / "logs" / "probe.json").read_text())["code"]
    with pytest.raises(ConfigError, match="related-methods preset 'huge'"):
        R.reproduce("smoke", out=tmp_path, related="huge")


def test_a_notebook_listed_before_an_up_to_date_step_it_reads_still_runs(tmp_path, monkeypatch):
    """Up-to-date steps finish within one scheduling pass; a notebook waiting on a later one runs on the next."""
    import bi_core.reproduce as R
    from bi_core.steps import Step

    steps = {n: Step(n, lambda c: None, lambda c, n=n: c.out / n) for n in ("analyses", "later")}
    monkeypatch.setattr(R, "STEPS", steps)
    monkeypatch.setattr(R, "stamp_is_current", lambda step, ctx: True)
    # 'a' reads the analyses, so it is launched right after them, before 'later' is checked
    monkeypatch.setattr(R, "NOTEBOOK_DEPS", {"a": ("analyses", "later")})
    monkeypatch.setattr(R, "run_notebook", lambda name, params, out_dir, **kw: out_dir / f"{name}.ipynb")
    ctx = R.Context(preset=R.BOOK_PRESETS["smoke"], out=tmp_path, book_out=tmp_path, seed=0, quiet=True)
    done = []
    executed = R._run_graph(ctx, 2, lambda n: None, lambda n, t0, ran: done.append(n), [("a", lambda c: {})], tmp_path)
    assert list(executed) == ["a"] and done == ["analyses", "later", "notebook a"]


def test_scorecard_runs_with_no_scenario_built(tmp_path):
    """The scorecard never crashes on a missing scenario: every cell says it was not run in this build."""
    from bi_core.reproduce import run_notebook

    params = {k: "none" for k in ("static_results", "static_cohort", "dynamic_results", "dynamic_cohort",
                                  "real_results")}
    values = _glued(run_notebook("00_scorecard", params, tmp_path))
    assert values["n_rep_static"] == values["n_rep_real"] == values["n_not_dynamic"] == "0"
    assert "not run in this build" in values["dynamic_text"]


def check_real_data_held_out(art: Path) -> None:
    """Every real-data number of chapter 7 and the read-outs comes from a run that held its subject out."""
    import pandas as pd

    runs = art / "runs" / "real-hcp"
    res = art / "results-real"
    folds = pd.read_csv(res / "folds.tsv", sep="\t", dtype={"subject": str})
    k = folds["fold"].nunique()
    assert k >= 2 and folds["subject"].is_unique
    val = {f: {str(s) for s in json.loads((runs / f"fold-{f}" / "summary.json").read_text())["val_subjects"]}
           for f in range(k)}
    hcp = pd.read_csv(art / "real" / "hcp" / "recordings.tsv", sep="\t", dtype={"subject": str})
    # the folds partition the HCP subjects, as the runs recorded them
    assert sorted(s for v in val.values() for s in v) == sorted(hcp["subject"].unique()) == sorted(folds["subject"])
    for name in ("predictability_hcp", "interactions_hcp", "predictability_linear_hcp"):
        t = pd.read_csv(res / f"{name}.tsv", sep="\t", dtype={"subject": str})
        assert set(t["subject"]) == set(hcp["subject"]), name                  # every subject scored ...
        assert all(s in val[f] for s, f in zip(t["subject"], t["fold"])), name  # ... by the run that held it out
    assert set(pd.read_csv(res / "predictability_gw.tsv", sep="\t")["fold"]) == {0}
    curve = pd.read_csv(res / "learning_curve_hcp.tsv", sep="\t")
    assert sorted(curve["fold"].unique()) == list(range(k))                    # one block per fold
    for f, block in curve[curve["method"] == "model"].groupby("fold"):
        assert set(block["n_recordings"]) == {int(hcp["subject"].isin(val[f]).sum())}
    meta = json.loads((art / "readouts-real" / "readouts.json").read_text())
    assert sorted(meta["held_out_subjects"]) == sorted(hcp["subject"].unique())
    ro = pd.read_csv(art / "readouts-real" / "readout_values.tsv", sep="\t", dtype={"subject": str})
    assert ro["held_out"].all() and all(s in val[f] for s, f in zip(ro["subject"], ro["fold"]))


@pytest.mark.slow
def test_real_data_tables_read_held_out_subjects_only(built):
    check_real_data_held_out(built / "art")


@pytest.mark.slow
def test_built_book_has_no_raw_roles_backticks_broken_anchors_or_raw_tables(built):
    """`make check-book`'s HTML checks (tools/check_book.py) on the smoke book; MathJax is served with it."""
    html_dir = built / "_build" / "html"
    from tests.test_check_book import CB

    findings = CB.check_html(html_dir)
    assert not findings, "\n".join(map(str, findings))
    assert (html_dir / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    assert (html_dir / "_static" / "bi_core.css").is_file()


#: What the browser checks may still find in the smoke book (nothing: issue 26, part 3 fitted the figures to the page).
BROWSER_KNOWN: set[str] = set()


@pytest.mark.slow
def test_built_book_reads_in_a_browser_at_desktop_and_phone_width(built):
    """The scorecard, chapters 4 and 7 and the reproducibility page in headless Chromium at 1280 and 400 px."""
    from tests.test_check_book import CB as cb

    browser = cb.find_browser()
    if browser is None:
        pytest.skip("no Chromium (apt-get install chromium): the browser checks of make check-book cannot run")
    pages = [f"notebooks/{n}.html" for n in ("00_scorecard", "04_interactions", "07_real_data", "reproducibility")]
    findings = [f for f in cb.check_browser(built / "_build" / "html", browser, (1280, 400), pages, progress=False)
                if f.check not in BROWSER_KNOWN]
    assert not findings, "\n".join(map(str, findings))


# moved from test_steps.py: every test that reads the smoke book lives in this file (conftest.py, make test)
@pytest.mark.slow
def test_dynamic_suite_scores_the_dynamic_reference_and_truth(smoke_book):
    """The suite on a small dynamic cohort (the smoke book's synth-dynamic and analyses-dynamic steps: the smoke
    run on the dynamic smoke cohort): the static suite's tables, plus the dynamic-FC feature set."""
    from bi_core.analysis.suite import DYNAMIC_FC_NAME
    from bi_core.steps import dynamic_synth_config

    synth, out = smoke_book / "art" / "dynamic" / "synth", smoke_book / "art" / "dynamic" / "results"
    written = json.loads((synth / "synth_config.json").read_text())      # the cohort this test used to generate
    assert written["preset"] == json.loads(json.dumps(dynamic_synth_config("smoke").to_dict())) and written["seed"] == 0
    summary = json.loads((out / "summary.json").read_text())
    for name in ("predictability.tsv", "predictability_linear.tsv", "interactions.tsv", "groupdiff_interactions.tsv",
                 "classification_ad_cn_summary.tsv", "classification_mci_cn_summary.tsv", "groundtruth.json"):
        assert (out / name).is_file(), name
    import pandas as pd

    s = pd.read_csv(out / "classification_ad_cn_summary.tsv", sep="\t")
    assert DYNAMIC_FC_NAME in set(s["feature_set"])
    gts = json.loads((out / "groundtruth.json").read_text())
    truth = json.loads((synth / "ground_truth.json").read_text())
    assert gts["interactions_AD-CN_attention"]["true"] == sorted("–".join(sorted(p["pair"]))
                                                                 for p in truth["disease"]["altered_pairs"])
    assert "implied_AD-CN" not in gts and "implied changes" in summary["skipped"]


@pytest.mark.slow
def test_suite_tables_of_the_book(built):
    """The book's ``analyses`` step is :func:`bi_core.analysis.suite.run_suite` (what ``bi-core analyze`` runs) on the
    smoke evaluation cohort: every table, the untrained control, the interaction measures scored against the
    generator's truth, and the linear references on the model's recordings. (``analyze``'s own plumbing and its
    cross-fitted default: tests/test_labels.py.)"""
    import pandas as pd

    from bi_core.analysis.groundtruth import score_interaction_changes

    out, smoke_dir = built / "art" / "results", built / "art" / "synth"
    for f in ("predictability.tsv", "predictability_linear.tsv", "interactions.tsv", "embeddings.tsv",
              "groupdiff_predictability.tsv", "groupdiff_predictability_linear.tsv", "groupdiff_largest.tsv",
              "groupdiff_largest_linear.tsv", "groupdiff_interactions.tsv", "classification_ad_cn_summary.tsv",
              "classification_3class_summary.tsv", "marker.tsv", "groundtruth.json", "summary.json"):
        assert (out / f).is_file(), f
    # "the largest effect" of the model and of ridge: one bootstrap each, the same resamples, every network once
    big, big_ridge = (pd.read_csv(out / f, sep="\t") for f in ("groupdiff_largest.tsv", "groupdiff_largest_linear.tsv"))
    assert len(big) == len(big_ridge) and set(big_ridge["method"]) == {"ridge"}
    for _, g in big_ridge.groupby("contrast"):
        assert 0 < g["p_largest"].sum() <= 1 + 1e-9 and sorted(g["rank"]) == list(range(1, len(g) + 1))
    s = json.loads((out / "summary.json").read_text())
    # the untrained-encoder and FC references of the marker, beside the trained one (chapter 6): the same visits,
    # trajectory model and clinical association
    if (out / "longitudinal_slopes.tsv").is_file():
        from bi_core.analysis.longitudinal import marker_reference_text

        marker = pd.read_csv(out / "marker.tsv", sep="\t")
        for ref, words in (("untrained", "untrained encoder"), ("fc", "network FC")):
            m = pd.read_csv(out / f"marker_{ref}.tsv", sep="\t")
            assert list(m["recording_id"]) == list(marker["recording_id"]) and not m["marker"].equals(marker["marker"])
            a = pd.read_csv(out / f"longitudinal_association_{ref}.tsv", sep="\t")
            assert {"within", "between"} <= set(a["part"]) and a["p"].between(0, 1).all()
            text = marker_reference_text(out, ref, "AD", "CN")
            assert words in text and "marker SD per year faster" in text and "between subjects" in text
    feats = set(s["classification"]["ad_cn"])
    assert {"BrainInterNet embedding", "embedding (mean-pooled)", "FC correlation", "FC tangent"} <= feats
    # every interaction measure, the pairwise ones and their FC baseline included, is tested and scored
    gi = pd.read_csv(out / "groupdiff_interactions.tsv", sep="\t")
    gt = json.loads((out / "groundtruth.json").read_text())
    truth = json.loads((smoke_dir / "ground_truth.json").read_text())
    for m in ("occlusion_delta_r2", "source_only_r", "fc_correlation", "linear_occlusion_delta_r2"):
        assert (gi["measure"] == m).sum() == 2 * 8 * 7, m
        # groundtruth.json scores the table that was written, against the generator's three altered pairs
        score = gt[f"interactions_AD-CN_{m}"]
        again = score_interaction_changes(gi, truth, "AD-CN", m)
        assert (score["found"], score["true_positives"]) == (again["found"], again["true_positives"]), m
        assert score["n_true"] == 3 and score["recall"] == score["n_true_positives"] / 3, m
    # the linear references score the same baseline recordings as the model, fitted on the pretraining cohort
    pred = pd.read_csv(out / "predictability.tsv", sep="\t")
    lin = pd.read_csv(out / "predictability_linear.tsv", sep="\t")
    assert set(lin["method"]) == {"ridge", "lagged-ridge"} and s["linear"]["fit"]["mode"] == "fit cohort"
    for _, g in lin.groupby("method"):
        assert g[["recording_id", "network", "n_windows"]].reset_index(drop=True).equals(
            pred[["recording_id", "network", "n_windows"]])
