"""The request parameters and the answer cache key: every field is keyed, none by hand."""

from __future__ import annotations

import dataclasses

import pytest

from ranking.config import RANKING_CONFIG
from ranking.pipeline import RecommendRequest
from serving.config import ServingConfig
from serving.deps import RecommendParams
from serving.errors import ApiError
from serving.models import RankRequest
from serving.recommender import NOT_KEYED, request_key

CFG = ServingConfig(brokers=["127.0.0.1:9"], redis_url="redis://127.0.0.1:9", repeat_cooldown_s=7)
NOW_MS = 1_795_248_060_000


def _other(value: object) -> object:
    """A different value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, frozenset):
        return value | {"another"}
    if value is None:
        return "chill"
    if isinstance(value, str):
        return value + "-other"
    return dataclasses.replace(value, cooldown_s=value.cooldown_s + 1)  # ExclusionRules


def test_the_parameters_become_the_request_field_by_field() -> None:
    params = RecommendParams(k=3, mood="chill", activity="running", hour=7, diversity=0.2, discovery=0.4,
                             exclude=frozenset({"t1"}))
    request = params.request(CFG, now_ms=NOW_MS)
    for f in dataclasses.fields(params):
        assert getattr(request, f.name) == getattr(params, f.name)
    assert request.now_ms == NOW_MS and request.clock_hour == NOW_MS // 3_600_000 % 24
    assert request.rules.cooldown_s == 7
    assert {f.name for f in dataclasses.fields(RecommendParams)} <= {
        f.name for f in dataclasses.fields(RecommendRequest)}


def test_an_unset_diversity_is_the_ranking_configs_default() -> None:
    assert RecommendParams().request(CFG).diversity == CFG.ranking.diversity_default
    variant = dataclasses.replace(RANKING_CONFIG, diversity_default=0.05)
    assert RecommendParams().request(CFG, config=variant).diversity == 0.05
    assert RecommendParams(diversity=0.0).request(CFG, config=variant).diversity == 0.0


def test_unknown_moods_and_activities_are_refused_with_each_field_named() -> None:
    with pytest.raises(ApiError) as caught:
        RecommendParams(mood="grumpy", activity="juggling").request(CFG)
    assert caught.value.status == 422 and caught.value.code == "invalid_parameters"
    assert [d["field"] for d in caught.value.details] == ["mood", "activity"]
    RecommendParams(mood="gym").request(CFG)  # an alias is known


def test_a_rank_body_gives_the_fields_it_has() -> None:
    body = RankRequest(track_ids=["a", "b"], mood="chill", hour=5, discovery=0.3, diversity=0.1)
    params = RecommendParams.from_body(body, k=len(body.track_ids))
    assert params == RecommendParams(k=2, mood="chill", hour=5, discovery=0.3, diversity=0.1)


def test_every_request_field_but_the_clock_changes_the_cache_key() -> None:
    base = RecommendParams(k=5, mood="chill", activity="running", hour=7).request(CFG, now_ms=NOW_MS)
    key = request_key(base)
    hash(key)
    assert request_key(dataclasses.replace(base, now_ms=NOW_MS + 1)) == key
    names = [f.name for f in dataclasses.fields(base) if f.name not in NOT_KEYED]
    assert names and set(NOT_KEYED) == {"now_ms"}
    for name in names:
        if name == "config":
            changed = dataclasses.replace(base, config=dataclasses.replace(RANKING_CONFIG, mood=0.9))
        else:
            changed = dataclasses.replace(base, **{name: _other(getattr(base, name))})
        assert request_key(changed) != key, name


def test_the_same_values_give_the_same_key() -> None:
    one = RecommendParams(k=5, exclude=frozenset({"a", "b"})).request(CFG, now_ms=NOW_MS)
    two = RecommendParams(k=5, exclude=frozenset({"b", "a"})).request(CFG, now_ms=NOW_MS + 999)
    assert request_key(one) == request_key(two)
    equal_config = dataclasses.replace(RANKING_CONFIG)
    assert request_key(dataclasses.replace(one, config=equal_config)) == request_key(one)


def test_a_field_added_later_is_keyed_without_being_listed() -> None:
    Extended = dataclasses.make_dataclass(
        "Extended", [("genre", str | None, dataclasses.field(default=None))], bases=(RecommendRequest,),
        frozen=True)
    plain = Extended(k=5, now_ms=NOW_MS)
    assert request_key(plain) != request_key(Extended(k=5, now_ms=NOW_MS, genre="jazz"))
    assert request_key(Extended(k=5, genre="jazz")) == request_key(Extended(k=5, genre="jazz"))
