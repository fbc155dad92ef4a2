"""learning_curve.decoder_share_text: the sentence every chapter that reads attention glues."""

from __future__ import annotations

import pandas as pd

from bi_core.analysis.learning_curve import decoder_share_text


def _curve(model_r2: float, ridge_r2: float, fold: int | None = None, parts: dict[str, float] | None = None,
           n: int = 3) -> pd.DataFrame:
    rows = [{"method": "model", "epoch": e, "step": 10 * e, "network": net, "r2": model_r2 * e / 2, "n_recordings": n}
            for e in (1, 2) for net in ("VIS", "DMN")]
    rows += [{"method": m, "epoch": None, "step": None, "network": net, "r2": r, "n_recordings": n}
             for m, r in (("ridge", ridge_r2), ("lagged-ridge", ridge_r2)) for net in ("VIS", "DMN")]
    rows += [{"method": f"model: {p}", "epoch": 2, "step": 20, "network": net, "r2": r, "n_recordings": n}
             for p, r in (parts or {}).items() for net in ("VIS", "DMN")]
    t = pd.DataFrame(rows)
    return t if fold is None else t.assign(fold=fold)


def test_decoder_alone_states_its_ratio_to_ridge(tmp_path):
    _curve(0.45, 0.5).to_csv(tmp_path / "learning_curve.tsv", sep="\t", index=False)
    text = decoder_share_text(tmp_path)
    assert "produces the whole reconstruction" in text and "R² 0.450" in text and "0.90 of what" in text
    assert "(chapter 2)" in text


def test_folds_are_pooled_and_the_source_named(tmp_path):
    pd.concat([_curve(0.4, 0.5, fold=0, n=1), _curve(0.6, 0.5, fold=1, n=3)]).to_csv(
        tmp_path / "lc.tsv", sep="\t", index=False)
    text = decoder_share_text(tmp_path, "the held-out subjects", curve="lc.tsv", where="above")
    # pooled by recordings: (0.4 * 1 + 0.6 * 3) / 4 = 0.55
    assert "R² 0.550 on the held-out subjects" in text and "1.10 of what" in text and "(above)" in text


def test_a_silent_decoder_is_called_silent(tmp_path):
    _curve(0.5, 0.5, parts={"linear path": 0.5, "decoder": 0.0}).to_csv(tmp_path / "learning_curve.tsv", sep="\t",
                                                                        index=False)
    text = decoder_share_text(tmp_path)
    assert "adds +0.000 R²" in text and "nothing measurable" in text
    assert "not measured" in decoder_share_text(tmp_path / "missing")
