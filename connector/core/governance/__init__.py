"""Handoff governance (issue 11): stage gates, approvals, dispositions, nurture and handoffs.

The pure layer: canonical deals, their stage history, the rules files and ``now`` in,
decisions out (findings with the task to create, stage resets, approval requests, handoff
actions). No I/O and no clock. Reading deals from the CRMs and acting on these decisions
is the pipeline's job (a later step). Modules:

- ``rules``: the models of ``stages.yaml``, ``approvals.yaml``, ``dispositions.yaml`` and
  ``handoffs.yaml``, and their cross-checks against ``routing.yaml``.
- ``models``: ``Deal``, ``StageChange``, ``FieldChange`` and the decision types.
- ``stages``: ``evaluate_deal`` (gates, movement policies, hygiene).
- ``approvals``: ``approver_for``, ``resolve_approver``, ``approvals_needed``.
- ``dispositions``: ``disposition_actions``, ``recycle_owner``, ``nurture_track``.
- ``handoffs``: SDR to AE, Closed Won to Customer Success, Closed Lost.

This package imports none of its submodules: ``connector.core.rules`` imports
``governance.rules``, and ``approvals`` reads ``connector.core.rules`` objects.
"""
