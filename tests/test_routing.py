"""The routing control: a cohort whose every network is reconstructable from exactly one partner network."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bi_core.cohort import Cohort
from bi_core.routing import ROUTING, SIZES, generate_routing, partner_of, routing_summary, score_routing


@pytest.fixture(scope="module")
def routing_dir(tmp_path_factory):
    return generate_routing(tmp_path_factory.mktemp("routing") / "smoke", "smoke", seed=0)


def test_each_network_is_predictable_from_its_partner_only(routing_dir):
    """The planted truth holds in the data: a network's mean signal correlates with its partner's, not the others'."""
    truth = json.loads((routing_dir / "routing_truth.json").read_text())
    cohort = Cohort.open(routing_dir / "cohort")
    nets = list(cohort.atlas.networks)
    assert truth["source"] == partner_of(nets) and len(truth["source"]) == len(nets) == 2 * len(ROUTING)
    net = np.asarray(cohort.atlas.roi_networks)
    r = np.mean([np.corrcoef(np.stack([cohort.series(i)[:, net == n].mean(1) for n in nets]))
                 for i in range(len(cohort))], axis=0)
    for a, b in truth["source"].items():
        i, j = nets.index(a), nets.index(b)
        assert r[i, j] > 0.5
        assert np.abs(np.delete(r[i], [i, j])).max() < 0.2


def test_score_routing_names_the_strongest_source():
    rows = [("r1", "A", "B", 0.6), ("r1", "A", "C", 0.3), ("r1", "B", "A", 0.2), ("r1", "B", "C", 0.4),
            ("r2", "A", "B", 0.5), ("r2", "A", "C", 0.4), ("r2", "B", "A", 0.3), ("r2", "B", "C", 0.1)]
    v = pd.DataFrame(rows, columns=["recording_id", "target", "source", "attention"])
    s = score_routing(v, {"A": "B", "B": "A"}, ["attention", "missing"])
    assert list(s["hit"]) == [True, True]                  # B: mean over recordings 0.25 (A) vs 0.25 (C): A first
    assert s.loc[0, "margin"] == pytest.approx(0.55 - 0.35)
    summary = routing_summary(s)
    assert summary.loc[0, "hits"] == 2 and summary.loc[0, "share"] == 1.0


def test_sizes_and_truth_are_deterministic(tmp_path):
    a = generate_routing(tmp_path / "a", replace(SIZES["smoke"], n_subjects=2, n_frames=80), seed=3)
    b = generate_routing(tmp_path / "b", replace(SIZES["smoke"], n_subjects=2, n_frames=80), seed=3)
    assert np.array_equal(Cohort.open(a / "cohort").data, Cohort.open(b / "cohort").data)


@pytest.mark.slow
def test_a_trained_decoder_on_the_routing_control(routing_dir, tmp_path):
    """A small version of the book's positive control: the model learns the routing, and the read-outs that
    remove a source (occlusion) and the model-free FC name every planted partner."""
    from bi_core.analysis.routing import routing_control
    from bi_core.model import tiny
    from bi_core.runs import TrainConfig
    from bi_core.train import pretrain

    cfg = TrainConfig(model=tiny(), target_tr=None, epochs=150, batch_size=16, mask_groups=4, lr=3e-3,
                      val_fraction=0.25, patience=0)
    pretrain([routing_dir / "cohort"], cfg, tmp_path / "run", device="cpu", progress=False)
    res = routing_control(tmp_path / "run", routing_dir)
    pred = res.predictability.groupby("network")["r2"].mean()
    # the DAN-LIM pair learns slowest at this size (LIM has 2 ROIs): the others are learned within 150 epochs
    assert pred.mean() > 0.15 and (pred.drop(["DAN", "LIM"]) > 0.08).all(), pred
    hits = res.summary.set_index("readout")["hits"]
    assert hits["fc_correlation"] == 8 and hits["occlusion_delta_r2"] >= 7
    assert {"attention", "enrichment", "rollout", "integrated_gradients"} <= set(hits.index)


def test_the_scorecard_says_whether_attention_passes_the_routing_control():
    from bi_core.analysis.claims import routing_statement

    s = pd.DataFrame({"readout": ["attention", "enrichment", "occlusion_delta_r2"], "hits": [8, 6, 8],
                      "targets": [8, 8, 8]})
    assert "names the partner for 8 of 8" in routing_statement(s) and "not at the claim's root" in routing_statement(s)
    fails = routing_statement(s.assign(hits=[5, 6, 8]))
    assert "(enrichment) names the partner for 6 of 8" in fails and "fails at its root" in fails
    assert "not run in this build" in routing_statement(None)
