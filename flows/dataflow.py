"""The Encore dataflow, top to bottom as the data moves.

```
encore.events ─► decode_events ──────────────────────┬─ valid ─► attach_track ─► split_replica_events ─┬─ per event ─────► update_profile ─┬─► write_profiles (Redis)
                                                     │                                                 │                                  ├─► track_signals ─► update_track_stats ─► write_track_stats (Redis)
                                                     │                                                 │                                  ├─► artist_signals ─► update_artist_memory ─► write_artist_memory (Redis)
                                                     │                                                 │                                  ├─► ranker_examples ─► learn_ranker ─► write_ranker (Redis)
                                                     │                                                 │                                  ├─► experiment_signals ─► count_experiments ─► write_experiments (Redis)
                                                     │                                                 │                                  └─► refused_events (too_late, dedupe_full) ──┐
                                                     │                                                 └─ per partition ─► learn_global ─► merge_global ─► write_global (Redis)     │
                                                     └─ bad ─► invalid_messages ─┐                                                                                                  │
encore.tracks ─► decode_track ─► split_valid_tracks ─┬─ valid ───────────────────┼─► enrich_tracks ──► write_catalog (Redis)                                                        │
                                                     └─ bad ─────────────────────┴─┬─► to_dead_letter ─► write_dead_letters (encore.events.dlq) ◄────────────────────────────────────┘
                                                                                   └─► tally_dead_letters (Redis: counts by reason, progress)
```

`encore.events` also carries control messages (`schemas.events.Forget`): they take the same path to
`update_profile`, in the listener's partition order, and nowhere else (`flows.grouping.group_batch`).

After `update_profile`, every keyed step gets one item per touched key per batch, not one per
event: a partition's listening events (`flows/grouping.py`), a track's or an artist's summed signals.

`update_profile` (keyed by user) dedupes each event over the event-time horizon, holds events
ahead of the catalog, forgets a listener on a tombstone, and applies taste, engagement model, drift
and co-listening window per event and emits each touched track's increments; `update_track_stats`
(keyed by track) sums them in recovered state and emits the track's full state (`flows/user_state.py`, `flows/track_state.py`).
`learn_global` keeps one global-model replica per events partition and `merge_global` (one key)
publishes the merged model of each period (`flows/global_steps.py`); with `warm_start`,
`update_profile` reads it back from Redis as the prior of new listeners (`flows/global_priors.py`).
`count_experiments` (keyed by experiment) counts the outcomes of recommended tracks per variant,
from the request ids the events cite (`flows/experiment_state.py`).
`enrich_tracks` (one key) gives tracks without audio features predicted ones
(`flows/catalog_enrichment.py`).

Every profile, catalog and dead-letter write also records the partitions' progress (processed
offsets, for lag), counters and freshness, in the same pipeline (`flows/progress.py`,
`schemas/keys.py`).

Run it with `encore flow` (or `python -m bytewax.run encore.flow_main:flow`).
"""

from __future__ import annotations

from collections.abc import Callable

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSource
from bytewax.dataflow import Dataflow

from flows.artist_state import ArtistMemoryLogic, artist_memory_sink, artist_signals_of
from flows.catalog_enrichment import CatalogEnrichmentLogic, CatalogReader, key_catalog, unkey_catalog
from flows.config import FlowConfig
from flows.dead_letters import DeadLetter, DeadLetterTally
from flows.decode import (
    DecodedEvents,
    EventDecoder,
    SourceItem,
    decode_event_batch,
    decode_event_message,
    decode_track_message,
    events_of,
    is_valid,
    refused_of,
)
from flows.dedupe import DedupeConfig
from flows.experiment_state import ExperimentLogic, experiment_signals_of, experiment_sink
from flows.global_priors import GlobalPriorReader
from flows.global_steps import (
    GlobalMergerLogic,
    GlobalModelSink,
    GlobalReplicaLogic,
    key_for_merger,
)
from flows.grouping import Flattened, group_batch, is_replica_events
from flows.ranker_step import RankerLogic, ranker_examples_of, ranker_sink
from flows.redis_io import connect
from flows.redis_sinks import CatalogSink, ProfileSink
from flows.track_lookup import TrackLookup
from flows.track_sinks import TrackStatsSink
from flows.track_state import TrackStateLogic
from flows.user_state import HoldConfig, ProfileWrite, UserProfileLogic, no_prior, track_signals_of
from online_models.taste import TasteLearner


def _event_decoder(config: FlowConfig) -> EventDecoder:
    """decode_event_message, with a span per traced event when tracing is on (flows/tracing.py)."""
    if not config.tracing:
        return decode_event_message
    from flows.tracing import traced_decode

    return traced_decode(decode_event_message)


def _batch_decoder(config: FlowConfig) -> Callable[[list[SourceItem]], list[DecodedEvents]]:
    """decode_event_batch over the decoder of each message."""
    decode = _event_decoder(config)
    return lambda batch: decode_event_batch(batch, decode)


def build_flow(config: FlowConfig, warm_start: bool = False) -> Dataflow:
    """The dataflow. `warm_start` starts new listeners from the published global model; it is off
    by default because which model a listener gets depends on how far the merger got when their
    first event is processed, which a crash and replay (or a backlog) changes (docs/models.md,
    "Open points")."""
    topics, keys = config.topics, config.keys
    learner = TasteLearner()
    lookup = TrackLookup(connect(config.redis_url), keys, config.catalog_refresh_s)
    priors = (GlobalPriorReader(connect(config.redis_url), keys, config.catalog_refresh_s)
              if warm_start else no_prior)
    dedupe = DedupeConfig(horizon_ms=config.dedupe_horizon_s * 1000)
    hold = HoldConfig(max_events=config.hold_events, max_wait_ms=config.hold_s * 1000,
                      recheck_s=config.catalog_refresh_s)
    catalog = lookup.tracks if config.hold_events > 0 else None

    def source(topic: str) -> KafkaSource:
        consumer_config = {"fetch.wait.max.ms": str(config.fetch_wait_ms), **config.kafka_config}
        return KafkaSource(config.brokers, [topic], add_config=consumer_config,
                           batch_size=config.batch_size, raise_on_errors=False)

    flow = Dataflow("encore")

    # Listening events → per-user profiles and models.
    raw_events = op.input("read_events", flow, source(topics.events))
    # One item per source batch, its events and its dead letters apart (`flows/decode.py`).
    decoded = op.flat_map_batch("decode_events", raw_events, _batch_decoder(config))
    # The listeners' events, and one list per source partition per batch (`flows/grouping.py`).
    with_tracks = op.flat_map_batch("attach_track", decoded,
                                    lambda batches: group_batch(lookup.attach(events_of(batches))))
    by_key = op.branch("split_replica_events", with_tracks, is_replica_events)
    profiles = op.stateful_batch(
        "update_profile", by_key.falses,
        lambda resume: UserProfileLogic(learner, resume, priors, dedupe=dedupe, tracks=catalog, hold=hold),
    )
    op.output("write_profiles", profiles, ProfileSink(config.redis_url, keys))
    # Item statistics and co-listening of the applied events → per-track state → full-state writes.
    signals = op.flat_map_batch("track_signals", profiles, track_signals_of)
    track_states = op.stateful_batch("update_track_stats", signals, TrackStateLogic)
    op.output("write_track_stats", track_states, TrackStatsSink(config.redis_url, keys))
    # Artist co-occurrence in listeners' whole histories → per-artist rows → full-state writes.
    artist_signals = op.flat_map_batch("artist_signals", profiles, artist_signals_of)
    artist_rows = op.stateful_batch("update_artist_memory", artist_signals, ArtistMemoryLogic)
    op.output("write_artist_memory", artist_rows, artist_memory_sink(config.redis_url, keys))
    # The learned ranker: every clear outcome, featured as the profile stood before it, progressively
    # validated (`flows/ranker_step.py`).
    examples = op.flat_map_batch("ranker_examples", profiles, ranker_examples_of)
    ranker_states = op.stateful_batch("learn_ranker", examples, RankerLogic)
    op.output("write_ranker", ranker_states, ranker_sink(config.redis_url, keys))
    # Outcomes of recommended tracks per experiment variant (the request ids the events cite).
    experiment_signals = op.flat_map_batch("experiment_signals", profiles, experiment_signals_of)
    experiment_counts = op.stateful_batch("count_experiments", experiment_signals, ExperimentLogic)
    op.output("write_experiments", experiment_counts, experiment_sink(config.redis_url, keys))
    # Global model (prior of new listeners, fallback score): a replica per events partition, fed
    # before the per-user dedupe (a redelivered duplicate may be learned twice: the prior is
    # approximate), one merger that sees K records per period, published to Redis
    # (`flows/global_steps.py`).
    replica_records = op.stateful_batch("learn_global", by_key.trues,
                                        lambda resume: Flattened(GlobalReplicaLogic(resume)))
    to_merger = op.map("key_for_merger", replica_records, key_for_merger)
    publications = op.stateful_batch("merge_global", to_merger, GlobalMergerLogic)
    op.output("write_global", publications, GlobalModelSink(config.redis_url, keys))

    # Catalog upserts → the catalog every worker and API replica reads.
    raw_tracks = op.input("read_tracks", flow, source(topics.tracks))
    tracks = op.map("decode_track", raw_tracks, decode_track_message)
    checked_tracks = op.branch("split_valid_tracks", tracks, is_valid)
    # One key: the audio-feature regressor sees every upsert (`flows/catalog_enrichment.py`).
    existing = CatalogReader(connect(config.redis_url), keys)
    keyed_tracks = op.map("key_catalog", checked_tracks.trues, key_catalog)
    enriched = op.stateful_batch("enrich_tracks", keyed_tracks,
                                 lambda resume: CatalogEnrichmentLogic(existing, resume))
    resolved = op.map("unkey_catalog", enriched, unkey_catalog)
    op.output("write_catalog", resolved, CatalogSink(config.redis_url, keys, lookup))

    # Whatever could not be applied → the dead-letter topic, raw bytes and reason.
    invalid = op.flat_map("invalid_messages", decoded, refused_of)
    refused = op.flat_map("refused_events", profiles, _refused)
    dead = op.merge("collect_dead_letters", invalid, checked_tracks.falses, refused)
    dead_messages = op.map("to_dead_letter", dead, DeadLetter.to_kafka)
    op.output("write_dead_letters", dead_messages,
              KafkaSink(config.brokers, topics.dead_letters, add_config=dict(config.kafka_config)))
    op.output("tally_dead_letters", dead, DeadLetterTally(config.redis_url, keys))
    return flow


def _refused(item: tuple[str, ProfileWrite]) -> list[DeadLetter]:
    """Events the per-user step refused (too late to dedupe, dedupe memory full)."""
    return item[1].dead_letters
