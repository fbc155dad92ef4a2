"""Chapters 3–6 for any cohort (issue 24, part 3).

Every analysis chapter takes ``group_column``, ``reference`` and ``levels`` (defaults: the
book's diagnosis, CN, CN < MCI < AD) and shows its group-free parts only without groups;
no code cell names a diagnosis except through those parameters' defaults, and the prose cites the
groups through glued labels (``group_texts``). The notebooks run with papermill on a patient/control lab study written as XCP-D writes it
(``tests/test_derivatives.py``) and on the same cohort analysed without groups.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bi_core.analysis.chapters import NO_GROUPS, ChapterGroups, chapter_groups, group_texts
from bi_core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("03_predictability", "04_interactions", "05_classification", "06_longitudinal")


def _summary(tmp_path: Path, groups: dict | None) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "summary.json").write_text(json.dumps({"groups": groups}))
    return tmp_path


DX = {"column": "diagnosis", "reference": "CN", "order": ["CN", "MCI", "AD"], "contrasts": ["AD-CN", "MCI-CN"]}


def test_the_book_defaults_are_the_analysis_groups(tmp_path):
    g = chapter_groups(_summary(tmp_path, DX), "diagnosis", "CN", ["CN", "MCI", "AD"])
    assert g == ChapterGroups("diagnosis", ("CN", "MCI", "AD"), "CN")
    assert g.main == "AD-CN" and g.main_label == "AD\u2212CN" and g.contrast_names == ["AD-CN", "MCI-CN"] and g.compared == ("MCI", "AD")
    assert g.task() == "ad_cn" and g.task("MCI") == "mci_cn" and g.multiclass_task == "3class"
    # levels None (or "none" from the command line): every level the analysis compared; a subset is shown in order
    assert chapter_groups(tmp_path, "diagnosis", None, "none").order == ("CN", "MCI", "AD")
    sub = chapter_groups(tmp_path, "diagnosis", "CN", "CN,AD")
    assert sub.main == "AD-CN" and sub.contrast_names == ["AD-CN"] and sub.multiclass_task is None


def test_no_groups_gives_the_group_free_parts(tmp_path):
    assert chapter_groups(_summary(tmp_path, DX), None, "CN", ["CN", "MCI", "AD"]) is None
    assert chapter_groups(tmp_path, "None", None, None) is None
    # the analysis compared no groups: the defaults still run (group-free)
    assert chapter_groups(_summary(tmp_path, None), "diagnosis", "CN", ["CN", "MCI", "AD"]) is None


def test_parameters_that_do_not_match_the_analysis_say_what_it_compared(tmp_path):
    pc = {"column": "group", "reference": "control", "order": ["control", "patient"]}
    _summary(tmp_path, pc)
    with pytest.raises(InputError, match=r"compared the levels of 'group'; pass -p group_column group -p reference "
                                         r"control -p levels '\[\"control\", \"patient\"\]'"):
        chapter_groups(tmp_path, "diagnosis", "CN", ["CN", "MCI", "AD"])
    with pytest.raises(InputError, match="compared every level with 'control'"):
        chapter_groups(tmp_path, "group", "patient", None)
    with pytest.raises(InputError, match=r"levels=\['control', 'AD'\]: the analysis .* compared control, patient"):
        chapter_groups(tmp_path, "group", "control", ["control", "AD"])
    # the book's defaults on a cohort without MCI: shown without it, and said so
    _summary(tmp_path / "dx", {**DX, "order": ["CN", "AD"]})
    with pytest.warns(UserWarning, match=r"levels \['MCI'\] were not compared .* showing CN, AD"):
        assert chapter_groups(tmp_path / "dx", "diagnosis", "CN", ["CN", "MCI", "AD"]).order == ("CN", "AD")
    g = chapter_groups(tmp_path, "group", "control", ["control", "patient"])
    assert g.main == "patient-control" and g.task() == "patient_control" and g.multiclass_task is None


def test_no_chapter_names_a_diagnosis_but_through_its_parameters():
    for name in CHAPTERS:
        nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1, name
        src = "".join(params[0]["source"])
        for p in ("group_column", "reference", "levels"):
            assert re.search(rf"^{p} = ", src, re.M), (name, p)
        for cell in nb["cells"]:
            if cell["cell_type"] != "code" or cell is params[0]:
                continue
            code = "".join(cell["source"])
            hits = re.findall(r"\b(AD|MCI|CN)\b|need_diagnosis|\"diagnosis\"", code)
            assert not hits, (name, hits, code[:200])



def test_the_group_labels_read_as_the_book_with_its_defaults():
    """With the defaults the glued labels are the words the book's prose always had (a minus sign in contrasts)."""
    t = group_texts(ChapterGroups("diagnosis", ("CN", "MCI", "AD"), "CN"))
    assert t == {"main_group": "AD", "ref_group": "CN", "main_label": "AD\u2212CN", "main_vs_ref": "AD-versus-CN",
                 "a_main": "an", "mild_group": "MCI", "mild_label": "MCI\u2212CN", "levels_text": "CN, MCI and AD",
                 "contrasts_text": "AD\u2212CN and MCI\u2212CN", "others_group": "MCI", "an_others": "an MCI",
                 "others_noun": "MCI"}
    pc = group_texts(ChapterGroups("group", ("control", "patient"), "control"))
    assert (pc["main_label"], pc["a_main"], pc["levels_text"], pc["contrasts_text"]) == (
        "patient\u2212control", "a", "control and patient", "patient\u2212control")
    # no level besides the two: the marker chapter's "other subjects" still reads as English
    assert (pc["others_group"], pc["an_others"], pc["others_noun"]) == ("other", "any other", "other subjects")
    four = group_texts(ChapterGroups("dx", ("HC", "EMCI", "LMCI", "AD"), "HC"))
    assert four["contrasts_text"] == "AD\u2212HC, LMCI\u2212HC and EMCI\u2212HC" and four["an_others"] == "an EMCI or LMCI"
    assert set(group_texts(None).values()) == {NO_GROUPS} and set(group_texts(None)) == set(t)


SYNTHETIC = re.compile(r"synthetic|generator", re.I)


def _sentences(markdown: str) -> list[str]:
    """A markdown cell's sentences: split at a full stop, question or exclamation mark and at blank lines or
    headings (a heading or a figure caption is its own sentence)."""
    out = []
    for block in re.split(r"\n\s*\n|\n(?=#)|^```.*$", markdown, flags=re.M):
        out += [s for s in re.split(r"(?<=[.?!])\s+", " ".join((block or "").split())) if s]
    return out


def test_no_chapter_text_names_a_diagnosis_but_through_its_parameters():
    """The prose of chapters 3–6 cites the groups through glued labels (``{glue:text}`main_group```...).

    The rule: no markdown sentence names ``AD``, ``MCI`` or ``CN`` as a word, except one that says it is about the
    book's synthetic cohort (it contains "synthetic" or "generator"), whose planted effects are the book's levels.
    "Alzheimer's" is not a level name and is not checked (chapter 3's first paragraph states the paper's claim).
    """
    for name in CHAPTERS:
        nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for sentence in _sentences("".join(cell["source"])):
                if re.search(r"\b(AD|MCI|CN)\b", sentence) and not SYNTHETIC.search(sentence):
                    pytest.fail(f"{name}: a sentence names a diagnosis; glue it from the parameters "
                                f"(bi_core.analysis.chapters.group_texts) or say it is the synthetic cohort's: "
                                f"{sentence!r}")
    # the rule bites: the sentence chapter 3 had before its labels were glued
    old = "Adjusted for age, sex and site, AD lowers default-mode predictability by {glue:text}`dmn_est:.3f` R²."
    assert any(re.search(r"\b(AD|MCI|CN)\b", s) and not SYNTHETIC.search(s) for s in _sentences(old))
    assert not any(re.search(r"\b(AD|MCI|CN)\b", s) and not SYNTHETIC.search(s)
                   for s in _sentences("In the book's synthetic cohort, AD lowers it.\n\n## Heading"))


# ---------------------------------------------------------------------- papermill on a lab study
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A patient/control lab study ingested, pretrained (smoke preset) and analysed with and without groups."""
    import torch

    from bi_core.analysis.classify import CVConfig
    from bi_core.analysis.suite import run_suite
    from bi_core.ingest import ingest_bids
    from bi_core.preprocess import PreprocSpec
    from bi_core.runs import preset
    from bi_core.train import pretrain
    from test_derivatives import write_lab_study

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("lab")
    xd = write_lab_study(d / "raw", n_per_group=4, frames=160, seed=1)
    ingest_bids(xd, "lab", d / "cohort", PreprocSpec(), progress=False)
    pretrain([d / "cohort"], preset("smoke"), d / "run", device="cpu", progress=False)
    cv = CVConfig(n_splits=2, n_repeats=1, inner_splits=2, n_permutations=19, n_bootstrap=50)
    kw = dict(cv=cv, occlusion_windows=1, target="age")
    run_suite(d / "run", d / "cohort", d / "results", group_column="group", reference="control", **kw)
    run_suite(d / "run", d / "cohort", d / "results-free", **kw)
    torch.set_num_threads(n)
    return d


def _run(lab: Path, results: str, params: dict, out: Path, chapters: tuple[str, ...] = CHAPTERS,
         kernel: Any = None) -> dict[str, dict]:
    from bi_core.reproduce import run_notebook

    glued = {}
    for name in chapters:
        extra = {"readouts_dir": "none", "readouts_real_dir": "none", "routing_dir": "none"} \
            if name == "04_interactions" else {}
        nb = run_notebook(name, {"suite_dir": str(lab / results), "eval_cohort": str(lab / "cohort"),
                                 "ground_truth": "none", "preset": "smoke", **params, **extra}, out,
                          kernel=kernel)
        glued[name] = {o["metadata"]["scrapbook"]["name"]: o.get("data", {})
                       for c in json.loads(nb.read_text())["cells"] for o in c.get("outputs", [])
                       if o.get("metadata", {}).get("scrapbook")}
    return glued


@pytest.mark.slow
def test_chapters_run_on_a_patient_control_cohort(lab, tmp_path, shared_kernel):
    g = _run(lab, "results", {"group_column": "group", "reference": "control", "levels": ["control", "patient"]},
             tmp_path, kernel=shared_kernel)
    # the group parts ran: the main contrast is patient-control, the classification task patient vs control
    assert "group differences" not in json.dumps(g["03_predictability"]["sig_ad_list"])
    assert g["03_predictability"]["dmn_est"]["application/papermill.record/text/plain"] != "nan"
    assert g["05_classification"]["emb_auc"]["application/papermill.record/text/plain"] != "nan"
    assert "no classification" in json.dumps(g["05_classification"]["best3"])      # two levels: no all-levels task
    assert "fig_mats" in g["04_interactions"] and "fig_diff" in g["04_interactions"]
    assert g["06_longitudinal"]["n_sub"]["application/papermill.record/text/plain"] in ("0", "12")
    # the prose cites the lab's labels
    text = lambda nb, k: g[nb][k]["application/papermill.record/text/plain"].strip("'")  # noqa: E731
    for nb in CHAPTERS:
        assert (text(nb, "main_group"), text(nb, "ref_group"), text(nb, "main_label")) == (
            "patient", "control", "patient\u2212control"), nb
    assert text("04_interactions", "ref_who") == "control participants"
    assert text("05_classification", "k_classes") != "three"                    # no all-levels task with two levels


@pytest.mark.slow
def test_chapters_run_on_an_unlabelled_cohort(lab, tmp_path, shared_kernel):
    g = _run(lab, "results-free", {"group_column": None}, tmp_path / "none", kernel=shared_kernel)
    assert "no groups compared" in json.dumps(g["03_predictability"]["sig_ad_list"])
    assert g["03_predictability"]["most_r2"]["application/papermill.record/text/plain"] != "nan"
    assert {"fig_mats", "fig_diff", "fig_graph"} <= set(g["04_interactions"])      # a figure that says why
    assert "no groups compared" in json.dumps(g["05_classification"]["best_fc"])
    assert "no groups compared" in json.dumps(g["06_longitudinal"]["est_order"])
    assert "no groups compared" in json.dumps(g["03_predictability"]["main_group"])
    assert json.dumps(g["04_interactions"]["ref_who"]).count("all participants") == 1
    # the book's defaults on an analysis that compared no groups: the same group-free parts
    g = _run(lab, "results-free", {}, tmp_path / "defaults", chapters=("05_classification",), kernel=shared_kernel)
    assert "no groups compared" in json.dumps(g["05_classification"]["best_fc"])


def test_a_shared_kernel_forgets_the_previous_chapter(shared_kernel, tmp_path):
    """run_notebook(kernel=...) clears the namespace first: a chapter cannot read a name (an import alias
    included) that the previous chapter left, and it runs in its own directory."""
    from bi_core.reproduce import _kernel_execute, _reset_kernel

    assert _kernel_execute(shared_kernel, "import numpy as np\nleft = np.ones(3)")["status"] == "ok"
    _reset_kernel(shared_kernel, tmp_path)
    for name in ("left", "np"):
        reply = _kernel_execute(shared_kernel, name)
        assert reply["status"] == "error" and reply["ename"] == "NameError", reply
    assert _kernel_execute(shared_kernel, f"import os\nassert os.getcwd() == {str(tmp_path)!r}")["status"] == "ok"
