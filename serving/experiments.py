"""Experiments in serving: which variant a listener's answer is ranked with, its request id, and a
count of the answers served per variant (Prometheus, per replica).

The request id carries the variants (`schemas.values.encode_request_id`), so the flow attributes the
plays that cite it without any state shared with the API.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from ranking.config import RankingConfig
from ranking.experiments import assign, config_for
from schemas.values import encode_request_id
from serving.config import ServingConfig


@dataclass(frozen=True)
class Assigned:
    config: RankingConfig
    request_id: str
    variant: str | None
    """The variant names, comma-separated (None when the listener is in no experiment)."""
    experiments: dict[str, str] = field(default_factory=dict)
    """Experiment → variant."""


def served_counter(registry: CollectorRegistry) -> Counter:
    return Counter("encore_experiment_answers", "Answers served per experiment variant (this replica).",
                   ["experiment", "variant"], registry=registry)


def assigned_for(cfg: ServingConfig, user_id: str | None, served: Counter | None = None) -> Assigned:
    assignment = assign(cfg.experiments, user_id)
    pairs = [(e.name, v.name) for e, v in assignment]
    if served is not None:
        for experiment, variant in pairs:
            served.labels(experiment, variant).inc()
    return Assigned(config_for(cfg.ranking, assignment), encode_request_id(secrets.token_hex(8), pairs),
                    ",".join(v for _, v in pairs) or None, dict(pairs))
