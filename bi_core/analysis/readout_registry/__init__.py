"""The read-outs: every way of reading which source network a target network's reconstruction relies on,
each one function registered once in :data:`READOUTS`.

============================= ========= ============ ========================================
read-out                      family    source       module
============================= ========= ============ ========================================
``attention``                 attention interactions :mod:`~.attention`
``enrichment``                attention interactions :mod:`~.attention`
``attention_l{l}_h{h}``       attention window       :mod:`~.attention` (``attention_heads``)
``attention_selected``        attention selection    :mod:`~.attention`
``value_weighted``            attention window       :mod:`~.attention`
``rollout``                   attention window       :mod:`~.attention`
``input_x_gradient``          model     window       :mod:`~.gradients`
``integrated_gradients``      model     window       :mod:`~.gradients`
``occlusion_delta_r2``        model     interactions :mod:`~.occlusion`
``occlusion_share``           model     interactions :mod:`~.occlusion`
``source_only_r``             model     interactions :mod:`~.occlusion`
``fc_correlation``            reference fc           :mod:`~.references`
``linear_occlusion_delta_r2`` reference ridge        :mod:`~.references`
``fc_partial_correlation``    reference fc           :mod:`~.references`
============================= ========= ============ ========================================

A read-out is a function decorated with :func:`register` (name: its column in every table; a reader-facing
label; its family; its source, which says what the function is handed; what it needs; whether it is one of
the suite's interaction measures). The tables and figures enumerate the registry: the read-out study
(:func:`bi_core.analysis.readouts.model_readouts` runs every ``window`` read-out on its drawn windows;
:func:`~bi_core.analysis.readouts.readout_scenario` and :func:`~bi_core.analysis.readouts.real_readouts`
score every read-out in :func:`study_order`), the suite's interactions table
(:func:`bi_core.analysis.interactions.predictability_and_interactions` writes every ``interactions``
read-out; :func:`interaction_measures` are compared between groups), the model-free references
(:func:`bi_core.analysis.interactions.add_network_fc`), the routing control and the figures' labels and
family colours (:func:`labels`, :func:`family`).

Adding a read-out that reads what the passes already compute (a ``window`` read-out from the batch's
attention, values, gradients; an ``interactions`` read-out from the suite's sums): one function with
``@register`` in one of these modules (or a new one imported below, after the others: the order is the
suite's measure order) and its test. A read-out that needs a new forward pass adds it to
:class:`WindowPass` (a cached property) as well.

Importing this package does not import torch.
"""

from .base import (FAMILIES, LABELS, READOUTS, SOURCES, InteractionPass, Readout, WindowPass, family, fc_kinds,
                   interaction_measures, is_head_column, labels, register, registered, study_order, suite_columns)

# the read-outs register themselves on import, in this order
from . import attention, gradients, occlusion, references  # noqa: E402,F401  isort: skip

__all__ = ["FAMILIES", "LABELS", "READOUTS", "SOURCES", "InteractionPass", "Readout", "WindowPass", "family",
           "fc_kinds", "interaction_measures", "is_head_column", "labels", "register", "registered", "study_order",
           "suite_columns"]
