"""The ranked answers sent as plain JSON (`serving.routers.shared.json_answer`, `track_json`) are
the validated models' JSON."""

from __future__ import annotations

import orjson

from ranking.catalog_view import CatalogView
from ranking.pipeline import RankedTrack
from schemas.tracks import Track
from serving.models import RankResponse, Recommendations, RecommendedTrack
from serving.routers.shared import json_answer, track_json, track_out


def test_plain_answers_are_the_validated_models_json() -> None:
    view = CatalogView.build([Track(track_id="a", title="Ä", artist="X", genres=["rock", "pop"]),
                              Track(track_id="b", title="B", artist="", genres=[])])
    items = [RankedTrack(0, "a", 1.234567, ["because"], ["taste", "trending"], 0.5, None),
             RankedTrack(1, "b", -0.25, ["popular in the catalog"], [], None, "long_tail"),
             RankedTrack(0, "a", 3.0, [], [], 1e-07, None)]
    common = dict(user_id="u", profile_version=3, as_of="2026-12-01T00:00:00.000Z", stats_as_of=None,
                  target=None, request_id="r~e=v", variant="v", experiments={"e": "v"})
    for model, extra in ((Recommendations, dict(cold_start=False, seeded=True)),
                         (RankResponse, dict(unknown=["z"]))):
        fields = {**common, **extra, "items": [track_json(view, i) for i in items]}
        assert set(fields) == set(model.model_fields)  # every field
        assert list(fields["items"][0]) == list(RecommendedTrack.model_fields)
        validated = model(**common, **extra, items=[track_out(view, i) for i in items])
        response = json_answer(fields)
        assert response.media_type == "application/json"
        assert orjson.loads(response.body) == orjson.loads(validated.model_dump_json())
