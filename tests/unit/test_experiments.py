"""A/B experiments: configuration, stable assignment, request ids that carry variants, the flow's
counting step (exact in any batching and across a resume) and the report's statistics."""

from __future__ import annotations

import pickle

import pytest

from flows.experiment_state import ExperimentLogic, experiment_signals_of
from flows.progress import Position
from flows.user_state import ProfileWrite
from ranking.config import RANKING_CONFIG, RankingConfig
from ranking.experiments import (
    ExperimentConfigError,
    assign,
    config_for,
    parse_experiments,
    report,
    wilson,
)
from schemas.events import Event, EventContext, EventType
from schemas.values import decode_request_id, encode_request_id

TWO = ('[{"name": "ranker", "variants": [{"name": "control", "share": 0.5},'
       ' {"name": "popular", "share": 0.5, "overrides": {"taste": 0.0, "popularity": 2.0}}]}]')


def test_experiments_are_parsed_and_every_mistake_is_named() -> None:
    (experiment,) = parse_experiments(TWO)
    assert [v.name for v in experiment.variants] == ["control", "popular"]
    assert experiment.variants[1].config.popularity == 2.0 and experiment.variants[0].config == RANKING_CONFIG
    bad = [
        ("{}", "a JSON list"),
        ('[{"name": "a b", "variants": []}]', "name must be"),
        ('[{"name": "x", "variants": [{"name": "a", "share": 1}]}]', "at least two variants"),
        ('[{"name": "x", "variants": [{"name": "a", "share": 0.7}, {"name": "b", "share": 0.7}]}]',
         "more than 1"),
        ('[{"name": "x", "variants": [{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}]}]', "unique"),
        ('[{"name": "x", "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5,'
         ' "overrides": {"tsate": 1}}]}]', "unknown ranking setting 'tsate'"),
        ('[{"name": "x", "variants": [{"name": "a", "share": 0}, {"name": "b", "share": 0.5}]}]', "share"),
    ]
    for text, message in bad:
        with pytest.raises(ExperimentConfigError, match=message):
            parse_experiments(text)


def test_assignment_is_stable_follows_the_shares_and_depends_on_the_experiment_name() -> None:
    (experiment,) = parse_experiments(TWO)
    users = [f"user-{i}" for i in range(10_000)]
    first = [assign([experiment], u)[0][1].name for u in users]
    assert first == [assign([experiment], u)[0][1].name for u in users], "the same every time"
    share = first.count("popular") / len(users)
    assert 0.48 < share < 0.52
    (renamed,) = parse_experiments(TWO.replace('"ranker"', '"ranker-2"'))
    again = [assign([renamed], u)[0][1].name for u in users]
    assert 0.4 < sum(a != b for a, b in zip(first, again, strict=True)) / len(users) < 0.6
    (partial,) = parse_experiments(TWO.replace("0.5}", "0.25}").replace('"share": 0.5,', '"share": 0.25,'))
    outside = sum(not assign([partial], u) for u in users) / len(users)
    assert 0.47 < outside < 0.53, "shares below 1 leave the rest of the listeners out"
    assert assign([experiment], None) == []


def test_a_listeners_config_is_the_base_with_their_variants_overrides() -> None:
    base = RankingConfig.with_overrides({"artist": 0.5})
    (experiment,) = parse_experiments(TWO, base)
    popular = [(experiment, experiment.variants[1])]
    config = config_for(base, popular)
    assert config.popularity == 2.0 and config.taste == 0.0 and config.artist == 0.5
    assert config_for(base, popular) is config, "one object per variant: its digest is computed once"
    assert config_for(base, []) is base
    text = TWO.replace('"ranker"', '"other"').replace('"popularity": 2.0', '"genre": 0.1')
    (other,) = parse_experiments(text, base)
    two = [*popular, (other, other.variants[1])]
    both = config_for(base, two)
    assert both.popularity == 2.0 and both.genre == 0.1 and config_for(base, two) is both


def test_request_ids_carry_the_variants_and_anything_else_carries_none() -> None:
    rid = encode_request_id("a1b2c3d4", [("ranker", "popular"), ("other", "b")])
    assert decode_request_id(rid) == [("ranker", "popular"), ("other", "b")]
    assert decode_request_id("a1b2c3d4") == [] and decode_request_id(None) == []
    assert decode_request_id("x~bad name=1~ok=yes~=") == [("ok", "yes")]


def _event(i: int, user: str, type_: EventType, variant: str | None,
           position_ms: int | None = None) -> Event:
    rid = encode_request_id(f"{i:08x}", [("ranker", variant)]) if variant else None
    context = EventContext(request_id=rid) if rid else None
    return Event(event_id=f"e{i}", user_id=user, track_id=f"t{i % 7}", type=type_, ts=1_795_000_000_000 + i,
                 position_ms=position_ms, duration_ms=200_000 if position_ms is not None else None,
                 context=context)


def _stream() -> list[Event]:
    out = []
    for i in range(300):
        variant = (None, "control", "popular")[i % 3]
        kind = (EventType.PLAY, EventType.COMPLETE, EventType.LIKE, EventType.SKIP, EventType.DISLIKE)[i % 5]
        position = None if kind is not EventType.SKIP else (5_000 if i % 2 else 150_000)
        out.append(_event(i, f"u{i % 11}", kind, variant, position))
    return out


def _write(events: list[Event]) -> tuple[str, ProfileWrite]:
    learned = [(e, None, []) for e in events]
    return ("u", ProfileWrite(1, None, Position("t", 0, 0, 0), len(events), 0, learned))


def _run(events: list[Event], batch: int, resume_every: int | None = None) -> dict:
    logic = ExperimentLogic(None)
    out: dict = {}
    for n, start in enumerate(range(0, len(events), batch)):
        signals = experiment_signals_of([_write(events[start : start + batch])])
        for experiment, counts in signals:
            assert experiment == "ranker"
            (out,), _ = logic.on_batch([counts])
        if resume_every and n % resume_every == 0:
            logic = ExperimentLogic(pickle.loads(pickle.dumps(logic.snapshot())))
    return out


def test_the_flow_counts_outcomes_per_variant_exactly_in_any_batching_and_across_resumes() -> None:
    events = _stream()
    expected: dict = {}
    for e in events:
        pairs = decode_request_id(e.context.request_id) if e.context else []
        for _, variant in pairs:
            expected[(variant, str(e.type))] = expected.get((variant, str(e.type)), 0) + 1
            if e.type is EventType.SKIP and e.position_ms == 5_000:
                expected[(variant, "early_skip")] = expected.get((variant, "early_skip"), 0) + 1
    assert _run(events, 1) == expected
    assert _run(events, 37) == expected
    assert _run(events, 10, resume_every=2) == expected
    assert expected[("control", "early_skip")] > 0


def test_the_report_gives_rates_with_intervals_and_names_the_better_variant() -> None:
    (experiment,) = parse_experiments(TWO)
    outcomes = {"control": {"play": 400, "complete": 260, "like": 60, "skip": 140, "early_skip": 60,
                            "dislike": 5},
                "popular": {"complete": 120, "skip": 280, "early_skip": 200, "like": 10, "dislike": 30}}
    body = report(experiment, outcomes)
    control, popular = body["variants"]
    assert control["plays"] == 400 and popular["plays"] == 400  # max(play events, completes + skips)
    assert control["rates"]["complete"]["rate"] == 0.65
    low, high = control["rates"]["complete"]["ci95"]
    assert low < 0.65 < high and [round(x, 4) for x in wilson(260, 400)] == [low, high]
    assert body["verdict"]["winner"] == "control" and body["verdict"]["significant"]
    assert body["verdict"]["summary"].startswith("control is better")
    close = report(experiment, {"control": {"complete": 51, "skip": 49},
                                "popular": {"complete": 49, "skip": 51}})
    assert close["verdict"]["winner"] is None and close["verdict"]["leading"] == "control"
    assert report(experiment, {})["verdict"]["summary"].startswith("not enough data")
