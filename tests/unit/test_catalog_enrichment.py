"""The catalog branch's enrichment step: flows/catalog_enrichment.py."""

from __future__ import annotations

import numpy as np

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from flows.catalog_enrichment import (
    CatalogEnrichmentLogic,
    key_catalog,
    regressor_from_bytes,
    regressor_to_bytes,
    unkey_catalog,
)
from flows.progress import Position
from online_models.enrichment import AudioFeatureRegressor
from schemas.tracks import AUDIO_FEATURES, Track

CATALOG = read_spotify_csv(DEFAULT_SAMPLE)


def at(i: int) -> Position:
    return Position("tracks", 0, i, 1_795_000_000_000 + i)


def bare(track: Track, **changes: object) -> Track:
    """The track without its audio features (as a catalog feed without them would send it)."""
    return track.model_copy(update={**dict.fromkeys(AUDIO_FEATURES), **changes})


class Catalog:
    """What the catalog hash holds, as `ExistingTracks` sees it; remembers what was asked."""

    def __init__(self) -> None:
        self.tracks: dict[str, Track] = {}
        self.asked: list[list[str]] = []

    def __call__(self, track_ids: list[str]) -> dict[str, Track | None]:
        self.asked.append(track_ids)
        return {t: self.tracks.get(t) for t in track_ids}

    def write(self, items: list[tuple[Track, Position]]) -> None:
        for track, _ in items:
            self.tracks[track.track_id] = track


def run(logic: CatalogEnrichmentLogic, catalog: Catalog, tracks: list[Track]) -> list[Track]:
    out, retain = logic.on_batch([(t, at(i)) for i, t in enumerate(tracks)])
    out = list(out)
    assert retain is False
    catalog.write(out)
    return [t for t, _ in out]


def test_the_step_is_keyed_by_one_constant_and_hands_the_sink_plain_tracks() -> None:
    item = (CATALOG[0], at(0))
    key, value = key_catalog(item)
    assert unkey_catalog((key, value)) == item


def test_a_track_without_features_gets_predicted_ones_learned_from_measured_tracks() -> None:
    catalog = Catalog()
    logic = CatalogEnrichmentLogic(catalog, None)
    learned_from, new = CATALOG[:500], CATALOG[500]
    assert run(logic, catalog, learned_from) == learned_from  # measured: stored as sent
    assert catalog.asked == []  # measured tracks never need the catalog's copy
    [enriched] = run(logic, catalog, [bare(new)])
    assert enriched.features_predicted and enriched.has_features
    assert enriched.model_dump(exclude=set(AUDIO_FEATURES) | {"features_predicted"}) == \
        bare(new).model_dump(exclude=set(AUDIO_FEATURES) | {"features_predicted"})
    untrained = AudioFeatureRegressor().predict_one(bare(new))
    assert [getattr(enriched, f) for f in AUDIO_FEATURES] != [untrained[f] for f in AUDIO_FEATURES]
    assert logic.model.n_learned == 500


def test_measured_features_win_over_predicted_ones_and_over_a_later_bare_upsert() -> None:
    catalog = Catalog()
    logic = CatalogEnrichmentLogic(catalog, None)
    run(logic, catalog, CATALOG[:100])
    measured = CATALOG[200]
    [predicted] = run(logic, catalog, [bare(measured, title="first title")])
    assert predicted.features_predicted
    [replaced] = run(logic, catalog, [measured])  # the measured features arrive
    assert replaced == measured and not replaced.features_predicted
    [kept] = run(logic, catalog, [bare(measured, title="renamed")])  # a metadata-only upsert
    assert kept.title == "renamed" and not kept.features_predicted
    assert kept.feature_vector() == measured.feature_vector()


def test_upserts_of_one_track_in_one_batch_resolve_in_order() -> None:
    catalog = Catalog()
    logic = CatalogEnrichmentLogic(catalog, None)
    measured = CATALOG[7]
    out = run(logic, catalog, [measured, bare(measured, title="later")])
    assert out[1].title == "later" and out[1].feature_vector() == measured.feature_vector()
    assert not out[1].features_predicted
    assert catalog.asked == [[measured.track_id]]  # one read per batch, for the bare track only


def test_the_snapshot_is_exact_and_holds_only_learned_slots() -> None:
    model = AudioFeatureRegressor()
    for track in CATALOG[:300]:
        model.learn_one(track)
    blob = regressor_to_bytes(model)
    back = regressor_from_bytes(blob)
    assert np.array_equal(back.weights, model.weights) and np.array_equal(back.counts, model.counts)
    assert np.array_equal(back.mean, model.mean) and back.n_learned == model.n_learned
    probe = bare(CATALOG[400])
    assert back.predict_one(probe) == model.predict_one(probe)
    seen = int(np.count_nonzero(model.counts))
    assert len(blob) < 100 + seen * (4 + 4 + 8 * len(AUDIO_FEATURES))
    assert len(blob) < model.weights.nbytes / 4


def test_a_resumed_step_predicts_what_an_uninterrupted_one_does() -> None:
    catalog = Catalog()
    whole = CatalogEnrichmentLogic(catalog, None)
    run(whole, catalog, CATALOG[:200])
    first = CatalogEnrichmentLogic(catalog, None)
    run(first, catalog, CATALOG[:120])
    resumed = CatalogEnrichmentLogic(catalog, first.snapshot())
    run(resumed, catalog, CATALOG[120:200])
    probe = [bare(t) for t in CATALOG[300:310]]
    assert run(resumed, catalog, probe) == run(whole, catalog, probe)
