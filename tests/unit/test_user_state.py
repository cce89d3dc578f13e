"""The per-user step of the flow: flows/user_state.py (profile + engagement model + drift + window)."""

from __future__ import annotations

import pickle
import random

import pytest

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from flows.dedupe import DedupeConfig, event_id_hash
from flows.progress import Position
from flows.track_state import PAIR_DECAY, TrackSignal
from flows.user_state import (
    HoldConfig,
    ProfileWrite,
    UserProfileLogic,
    UserState,
    load_user_state,
    track_signals_of,
)
from online_models.co_listening import ListeningWindow
from online_models.drift import DriftDetector
from online_models.item_stats import coalesce, contributions
from online_models.logistic import OnlineLogisticRegression
from online_models.taste import TasteConfig, TasteLearner
from online_models.user_model import WEIGHTS_BYTES, UserModel
from schemas.events import Event, Forget
from schemas.profile_codec import NO_PRIOR, UserProfile, decode_profile, encode_profile
from schemas.tracks import Track

T0 = 1_795_248_000_000
CATALOG = read_spotify_csv(DEFAULT_SAMPLE)
BY_ID = {t.track_id: t for t in CATALOG}

Item = tuple[Event, Track | None, Position]


def stream(n: int, seed: int = 3, user: str = "u1") -> list[Item]:
    """One listener's events in partition order: completes and likes of loud tracks, skips of quiet
    ones, some plays, unknown tracks now and then, times a few minutes apart."""
    rng = random.Random(seed)
    out: list[Item] = []
    ts = T0
    for i in range(n):
        ts += rng.randrange(10_000, 400_000)
        t = rng.choice(CATALOG)
        loud = (t.energy or 0) > 0.6
        if rng.random() < 0.15:
            kind, fields = "play", {}
        elif loud:
            kind, fields = rng.choice(["complete", "complete", "like"]), {}
        else:
            kind, fields = "skip", {"position_ms": rng.randrange(0, 60_000), "duration_ms": 200_000}
        known = rng.random() > 0.05
        event = Event(event_id=f"{user}-{i}", user_id=user, track_id=t.track_id if known else f"x{i}",
                      type=kind, ts=ts, context={"device": rng.choice(["ios", "web"])}, **fields)
        out.append((event, t if known else None, Position("events", 0, i, ts)))
    return out


def batches(items: list[Item], sizes: list[int]) -> list[list[Item]]:
    out, at = [], 0
    for size in sizes:
        if at < len(items):
            out.append(items[at : at + size])
        at += size
    if at < len(items):
        out.append(items[at:])
    return out


def run(logic: UserProfileLogic, items: list[list[Item]]) -> list[ProfileWrite]:
    writes = []
    for batch in items:
        out, discard = logic.on_batch(batch)
        assert discard is False
        writes.extend(out)
    return writes


def signal_totals(writes: list[ProfileWrite]) -> tuple[dict, dict]:
    """Every track's item and pair sums over a run's writes (via the flow's own flat-map)."""
    keyed = [kv for write in writes for kv in track_signals_of([("u", write)])]
    for track_id, signal in keyed:
        assert signal.track_id == track_id
    return signal_totals_of_keyed(keyed)


def test_the_profile_carries_the_model_and_drift_state_the_step_keeps() -> None:
    logic = UserProfileLogic(TasteLearner(), None)
    writes = run(logic, batches(stream(120), [7, 30, 1, 50]))
    profile = decode_profile(writes[-1].blob, "u1")
    assert len(profile.model_weights) == WEIGHTS_BYTES == 312
    assert profile.model_weights == logic.state.model.to_bytes()
    assert UserModel.from_bytes(profile.model_weights) == logic.state.model
    assert DriftDetector.from_bytes(profile.drift) == logic.state.drift
    assert logic.state.drift.n > 0  # fed by the model's surprise
    assert profile.prior_period == NO_PRIOR
    assert profile.version == 120
    # It learned this listener: loud tracks above quiet ones.
    loud = max(CATALOG, key=lambda t: t.energy or 0)
    quiet = min(CATALOG, key=lambda t: t.energy or 1)
    probe = stream(1)[0][0]
    assert logic.state.model.predict_event(probe, loud) > logic.state.model.predict_event(probe, quiet)


def test_the_step_applies_each_event_as_the_models_do_one_by_one() -> None:
    """Reference: the same learners driven by hand, in the documented order."""
    items = stream(150, seed=9)
    logic = UserProfileLogic(TasteLearner(), None)
    writes = run(logic, batches(items, [3, 40, 40]))

    learner, profile = TasteLearner(), UserProfile("u1")
    model, drift, window = UserModel(), DriftDetector(), ListeningWindow()
    expected_items: list[tuple[str, int, float]] = []
    for event, track, _ in items:
        m = drift.lr_multiplier
        learner.learn_one(profile, event, track, m)
        engagement = model.learn_event(event, track, m)
        if engagement is not None:
            drift.update(engagement.surprise, event.ts)
        window.learn_one(event)
        expected_items.extend((f"{event.track_id}|{c}", era, v) for c, era, v in contributions(event))
    assert logic.state.model == model
    assert logic.state.drift == drift
    assert logic.state.window.entries == window.entries
    profile.model_weights, profile.drift = model.to_bytes(), drift.to_bytes()
    assert writes[-1].blob == encode_profile(profile)

    got_items, _ = signal_totals(writes)
    want = coalesce(expected_items)
    assert {(f"{t}|{c}", e) for t, c, e in got_items} == set(want)
    for (track_id, counter, era), value in got_items.items():
        assert value == pytest.approx(want[f"{track_id}|{counter}", era], rel=1e-12)


def test_pairs_go_to_both_tracks_scaled_like_the_co_listening_store() -> None:
    tracks = [CATALOG[i] for i in range(3)]
    items = [(Event(event_id=f"e{i}", user_id="u", track_id=t.track_id, type="complete", ts=T0 + i * 60_000),
              t, Position("events", 0, i, T0)) for i, t in enumerate(tracks)]
    logic = UserProfileLogic(TasteLearner(), None)
    (write,) = run(logic, [items])
    _, pairs = signal_totals([write])
    a, b, c = (t.track_id for t in tracks)
    era, one_b = PAIR_DECAY.scaled(1.0, T0 + 60_000)
    _, one_c = PAIR_DECAY.scaled(1.0, T0 + 120_000)
    assert pairs == {(a, b, era): one_b, (b, a, era): one_b,
                     (a, c, era): one_c, (c, a, era): one_c, (b, c, era): one_c, (c, b, era): one_c}
    signals = dict(track_signals_of([("u", write)]))
    assert signals[a].genres == tuple(tracks[0].genres)
    assert signals[c].newest_ms == T0 + 120_000 and signals[c].pairs_ms == T0 + 120_000


def test_resuming_from_a_snapshot_continues_bit_for_bit() -> None:
    items = stream(200, seed=5)
    plan = batches(items, [13, 60, 1, 26, 50])
    straight = UserProfileLogic(TasteLearner(), None)
    straight_writes = run(straight, plan)

    logic = UserProfileLogic(TasteLearner(), None)
    resumed_writes = []
    for batch in plan:
        resumed_writes.extend(run(logic, [batch]))
        logic = UserProfileLogic(TasteLearner(), logic.snapshot())  # a crash after every batch
    assert logic.snapshot() == straight.snapshot()
    assert [w.blob for w in resumed_writes] == [w.blob for w in straight_writes]
    assert signal_totals(resumed_writes) == signal_totals(straight_writes)
    assert logic.state.window.entries == straight.state.window.entries


def test_duplicates_teach_nothing_and_emit_no_track_signals() -> None:
    items = stream(80, seed=8)
    clean = UserProfileLogic(TasteLearner(), None)
    clean_writes = run(clean, batches(items, [20, 20, 20, 20]))

    rng = random.Random(1)
    with_dupes = list(items)
    for index in sorted(rng.sample(range(70), 15), reverse=True):
        with_dupes.insert(index + 1 + rng.randrange(0, 5), items[index])
    dupes = UserProfileLogic(TasteLearner(), None)
    dupe_writes = run(dupes, batches(with_dupes, [20, 25, 25, 25]))

    assert dupes.snapshot() == clean.snapshot()
    assert sum(w.duplicates for w in dupe_writes) == 15
    assert sum(w.applied for w in dupe_writes) == 80
    got_items, got_pairs = signal_totals(dupe_writes)
    want_items, want_pairs = signal_totals(clean_writes)
    assert got_items.keys() == want_items.keys() and got_pairs.keys() == want_pairs.keys()
    assert all(got_items[k] == pytest.approx(v, rel=1e-12) for k, v in want_items.items())
    assert all(got_pairs[k] == pytest.approx(v, rel=1e-12) for k, v in want_pairs.items())

    # A batch of nothing but duplicates: no profile write, no signals, no change at all.
    before = dupes.snapshot()
    (write,) = run(dupes, [items[-5:]])
    assert write.blob is None and write.applied == 0 and write.duplicates == 5
    assert write.learned == [] and track_signals_of([("u", write)]) == []
    assert dupes.snapshot() == before


def test_a_new_listener_warm_starts_from_the_prior_for_their_first_event_time() -> None:
    prior = OnlineLogisticRegression(dim=77, weights=[0.01 * i for i in range(78)])
    asked: list[int] = []

    def priors(ts_ms: int) -> tuple[int, OnlineLogisticRegression] | None:
        asked.append(ts_ms)
        return 1234, prior

    items = stream(30, seed=2)
    logic = UserProfileLogic(TasteLearner(), None, priors)
    (first,) = run(logic, [items[:1]])
    assert asked == [items[0][0].ts]
    profile = decode_profile(first.blob, "u1")
    assert profile.prior_period == 1234
    # One event learned on top of the prior's weights (or none when the event carries no signal).
    reference = UserModel.from_prior(prior)
    reference.learn_event(items[0][0], items[0][1])
    assert profile.model_weights == reference.to_bytes()

    run(logic, [items[1:10], items[10:]])
    logic = UserProfileLogic(TasteLearner(), logic.snapshot(), priors)
    run(logic, [stream(35, seed=2)[30:]])
    assert asked == [items[0][0].ts]  # once per listener, also across a resume
    assert logic.state.profile.prior_period == 1234


def test_a_snapshot_of_a_bare_profile_from_before_the_models_still_loads() -> None:
    items = stream(60, seed=4)
    old = UserProfileLogic(TasteLearner(), None)
    run(old, [items[:30]])
    # What the step snapshotted before the models: the pickled profile alone, without weights.
    bare = old.state.profile
    bare.model_weights, bare.drift = b"", b""
    legacy = pickle.dumps(bare)

    logic = UserProfileLogic(TasteLearner(), legacy)
    assert logic.state.model is None and logic.state.profile.version == 30
    (write,) = run(logic, [items[30:]])
    profile = decode_profile(write.blob, "u1")
    assert profile.version == 60 and len(profile.model_weights) == WEIGHTS_BYTES

    # With weights and drift in the bare profile, the model continues from them.
    with_model = pickle.dumps(old.state.profile.__class__(**{
        **old.state.profile.__dict__, "model_weights": old.state.model.to_bytes(),
        "drift": old.state.drift.to_bytes()}))
    state = load_user_state(with_model)
    assert state.model == old.state.model and state.drift == old.state.drift


def test_a_profile_pickled_before_newer_fields_existed_gets_their_defaults() -> None:
    profile = UserProfile("u9", version=4)
    for name in ("tod_counts", "model_weights", "drift", "prior_period"):
        del profile.__dict__[name]
    state = UserState.from_profile(pickle.loads(pickle.dumps(profile)))
    assert state.profile.tod_counts == [] and state.profile.prior_period == NO_PRIOR
    assert state.model is None


def test_the_drift_multiplier_scales_the_taste_learners_min_rate() -> None:
    config = TasteConfig()
    by_energy = sorted(CATALOG, key=lambda t: t.energy or 0)
    middle, loud = by_energy[len(by_energy) // 2], by_energy[-1]
    steps = {}
    for m in (1.0, 3.0):
        profile = UserProfile("u")
        learner = TasteLearner(config)
        learner.learn_one(profile, Event(event_id="a", user_id="u", track_id=middle.track_id, type="like",
                                         ts=T0), middle)
        before = profile.taste[1]
        learner.learn_one(profile, Event(event_id="b", user_id="u", track_id=loud.track_id,
                                         type="dislike", ts=T0 + 1), loud, m)
        steps[m] = profile.taste[1] - before
    assert steps[1.0] < 0  # pushed away from the disliked loud track
    assert steps[3.0] == pytest.approx(3 * steps[1.0])


def test_track_signals_pickle_compactly_and_round_trip() -> None:
    logic = UserProfileLogic(TasteLearner(), None)
    (write,) = run(logic, [stream(40, seed=6)])
    signals = track_signals_of([("u", write)])
    back = pickle.loads(pickle.dumps(signals))
    for (track_id, signal), (track_id2, signal2) in zip(signals, back, strict=True):
        assert isinstance(signal2, TrackSignal) and track_id == track_id2
        assert (signal.items, signal.pairs, signal.genres, signal.newest_ms, signal.pairs_ms) == (
            signal2.items, signal2.pairs, signal2.genres, signal2.newest_ms, signal2.pairs_ms)


def test_a_batch_of_many_users_outputs_gives_one_signal_per_track_with_the_sums() -> None:
    learner = TasteLearner()
    outputs = []
    for n, user in enumerate(["u1", "u2", "u3"]):
        logic = UserProfileLogic(learner, None)
        (write,) = run(logic, [stream(60, seed=10 + n, user=user)])
        outputs.append((user, write))
    merged = track_signals_of(outputs)
    assert len({track_id for track_id, _ in merged}) == len(merged)
    separately: list[ProfileWrite] = [w for _, w in outputs]
    want_items, want_pairs = signal_totals(separately)
    got_items, got_pairs = signal_totals_of_keyed(merged)
    assert got_items.keys() == want_items.keys() and got_pairs.keys() == want_pairs.keys()
    assert all(got_items[k] == pytest.approx(v, rel=1e-12) for k, v in want_items.items())
    assert all(got_pairs[k] == pytest.approx(v, rel=1e-12) for k, v in want_pairs.items())


def signal_totals_of_keyed(keyed: list[tuple[str, TrackSignal]]) -> tuple[dict, dict]:
    items: dict[tuple[str, str, int], float] = {}
    pairs: dict[tuple[str, str, int], float] = {}
    for track_id, signal in keyed:
        for (counter, era), value in signal.items.items():
            items[track_id, counter, era] = items.get((track_id, counter, era), 0.0) + value
        for neighbour, eras in signal.pairs.items():
            for era, value in eras.items():
                pairs[track_id, neighbour, era] = pairs.get((track_id, neighbour, era), 0.0) + value
    return items, pairs


# -- dedupe over the event-time horizon, refusals, forgetting, events ahead of the catalog ------

def _event(event_id: str, track: Track, ts: int, kind: str = "complete", user: str = "u1") -> Item:
    event = Event(event_id=event_id, user_id=user, track_id=track.track_id, type=kind, ts=ts)
    return (event, track, Position("events", 0, 0, ts))


def test_a_repeat_hours_later_and_far_beyond_24_events_is_applied_once() -> None:
    items = stream(300, seed=12)
    clean = UserProfileLogic(TasteLearner(), None)
    run(clean, batches(items, [50] * 6))
    # Every 10th event again 200 of the listener's events (many hours of event time) later.
    late = [items[i] for i in range(0, 100, 10)]
    assert items[200][0].ts - items[0][0].ts > 10 * 3_600_000
    replayed = items[:200] + late + items[200:]
    dupes = UserProfileLogic(TasteLearner(), None)
    writes = run(dupes, batches(replayed, [50] * 7))
    assert sum(w.duplicates for w in writes) == len(late)
    assert dupes.snapshot() == clean.snapshot()


def test_an_event_older_than_the_horizon_goes_to_the_dead_letters_as_too_late() -> None:
    t = CATALOG[0]
    logic = UserProfileLogic(TasteLearner(), None, dedupe=DedupeConfig(horizon_ms=3_600_000))
    hour = 3_600_000
    (write,) = run(logic, [[_event("a", t, T0 + 2 * hour), _event("b", t, T0 + hour + 1),
                            _event("c", t, T0 + hour - 1), _event("a", t, T0 + 2 * hour)]])
    assert (write.applied, write.duplicates) == (2, 1)
    (letter,) = write.dead_letters  # c: more than an hour before the newest event
    assert letter.code == "too_late" and "horizon (3600 s)" in letter.reason
    assert Event.model_validate_json(letter.raw).event_id == "c" and letter.key == b"u1"
    assert logic.state.profile.version == 2


def _forget(user: str = "u1") -> Item:
    return (Forget(user_id=user, request_id="r1", requested_at=T0), None, Position("events", 0, 0, T0))


def test_a_forget_drops_the_whole_state_and_later_events_start_a_fresh_profile() -> None:
    items = stream(60, seed=13)
    logic = UserProfileLogic(TasteLearner(), None)
    run(logic, [items[:40]])
    newest = items[39][0].ts
    (write,) = run(logic, [[_forget()]])
    assert write.forget and write.blob is None and write.learned == []
    state = logic.state
    assert state.profile == UserProfile("u1") and state.model is None and len(state.dedupe) == 0
    assert state.window.entries == [] and not state.artists.artists and state.held is None
    assert state.forgotten_through_ms == newest
    assert len(logic.snapshot()) < 600, "a tombstone: one number and an empty profile"
    # A resume keeps the tombstone; a retried old batch does not bring the listener back.
    logic = UserProfileLogic(TasteLearner(), logic.snapshot())
    (old,) = run(logic, [items[30:40]])
    assert old.forgotten == 10 and old.blob is None and old.applied == 0
    # Newer events start over: exactly a new listener's profile from those events alone.
    (fresh,) = run(logic, [items[40:]])
    reference = UserProfileLogic(TasteLearner(), None)
    (want,) = run(reference, [items[40:]])
    assert fresh.blob == want.blob and decode_profile(fresh.blob, "u1").version == 20


def test_a_forget_in_the_middle_of_a_batch_deletes_then_writes_what_followed() -> None:
    items = stream(30, seed=14)
    logic = UserProfileLogic(TasteLearner(), None)
    (write,) = run(logic, [[*items[:20], _forget(), *items[20:]]])
    assert write.forget and decode_profile(write.blob, "u1").version == 10
    assert len(write.learned) == 30, "aggregates keep what was learned before the forget"


class Catalog:
    """A `TrackSource` over a dict the test fills as tracks 'arrive'."""

    def __init__(self, tracks: dict[str, Track]) -> None:
        self.known = dict(tracks)
        self.asked = 0

    def __call__(self, track_ids) -> dict[str, Track | None]:
        self.asked += 1
        return {t: self.known.get(t) for t in track_ids}

    def attach(self, items: list[Item]) -> list[Item]:
        return [(e, self.known.get(e.track_id), p) for e, _, p in items]


def known_stream(n: int, seed: int) -> list[Item]:
    """`stream` with every track in the catalog."""
    rng = random.Random(seed)
    out = []
    for event, track, position in stream(n, seed=seed):
        if track is None:
            track = rng.choice(CATALOG)
            event = event.model_copy(update={"track_id": track.track_id})
        out.append((event, track, position))
    return out


def final(logic: UserProfileLogic) -> bytes:
    logic.state.sync()
    return encode_profile(logic.state.profile)


def test_events_ahead_of_the_catalog_end_where_a_run_with_the_whole_catalog_ends() -> None:
    """Held events are applied at their own place: the profile, model and drift equal a run that knew
    every track from the start, whenever the tracks arrive and wherever the step is resumed."""
    items = known_stream(160, seed=21)
    full = Catalog({t.track_id: t for _, t, _ in items})
    clean = UserProfileLogic(TasteLearner(), None, tracks=full)
    clean_writes = run(clean, batches(items, [20] * 8))
    assert sum(w.held for w in clean_writes) == 0

    rng = random.Random(2)
    late_ids = {items[i][0].track_id for i in rng.sample(range(160), 25)}
    catalog = Catalog({k: v for k, v in full.known.items() if k not in late_ids})
    hold = HoldConfig(max_events=500)  # within the bounds throughout (they have their own test)
    logic = UserProfileLogic(TasteLearner(), None, tracks=catalog, hold=hold)
    writes: list[ProfileWrite] = []
    pending = sorted(late_ids)
    for i, batch in enumerate(batches(items, [20] * 8)):
        out, _ = logic.on_batch(catalog.attach(batch))
        writes.extend(out)
        if i % 2 == 1:  # some tracks arrive: the timer finds them before the next batch
            for track_id in pending[:6]:
                catalog.known[track_id] = full.known[track_id]
            pending = pending[6:]
            notified, _ = logic.on_notify()
            writes.extend(notified)
        if i == 4:  # a crash and resume while events are held
            assert logic.state.held is not None
            logic = UserProfileLogic(TasteLearner(), logic.snapshot(), tracks=catalog, hold=hold)
    for track_id in pending:
        catalog.known[track_id] = full.known[track_id]
    writes.extend(logic.on_notify()[0])

    assert sum(w.held for w in writes) > 0 and logic.state.held is None
    assert sum(len(w.released) for w in writes) == sum(w.held for w in writes)
    assert sum(w.applied for w in writes) == 160
    assert final(logic) == final(clean)
    assert logic.state.model == clean.state.model and logic.state.drift == clean.state.drift
    assert logic.state.window.entries == clean.state.window.entries
    # Item statistics and co-listening learned every event on receipt: the same sums.
    assert signal_totals(writes) == signal_totals(clean_writes)


def test_the_timer_applies_a_held_event_when_its_track_arrives_without_another_event() -> None:
    t = CATALOG[3]
    catalog = Catalog({})
    logic = UserProfileLogic(TasteLearner(), None, tracks=catalog, hold=HoldConfig(recheck_s=0.5))
    (write,) = logic.on_batch(catalog.attach([_event("e1", t, T0, "like")]))[0]
    assert write.held == 1 and write.blob is None and write.applied == 0
    assert logic.notify_at() is not None
    assert logic.on_notify() == ([], False)  # not there yet
    catalog.known[t.track_id] = t
    (released,) = logic.on_notify()[0]
    assert released.applied == 1 and released.released == [t] and released.position == write.position
    profile = decode_profile(released.blob, "u1")
    assert profile.version == 1 and profile.genres == {g: 1.0 for g in t.genres}
    assert logic.notify_at() is None
    assert track_signals_of([("u1", released)])[0][1].genres == tuple(t.genres)


def test_a_held_event_waits_within_its_bounds_then_is_applied_without_its_track() -> None:
    ghost = Track(track_id="ghost", artist="Nobody", genres=["pop"])
    known = CATALOG[5]
    catalog = Catalog({known.track_id: known})
    hold = HoldConfig(max_events=4, max_wait_ms=3_600_000)
    logic = UserProfileLogic(TasteLearner(), None, tracks=catalog, hold=hold)
    items = [_event("g", ghost, T0, "like")] + [_event(f"k{i}", known, T0 + i * 1000) for i in range(1, 5)]
    (write,) = logic.on_batch(catalog.attach(items))[0]
    # The log holds the held event and 3 after it; the 4th makes 5 > 4: given up, applied trackless.
    assert write.held == 1 and write.released == [None] and logic.state.held is None
    reference = UserProfileLogic(TasteLearner(), None)  # no catalog: unknown tracks apply at once
    (want,) = run(reference, [[(items[0][0], None, items[0][2]), *items[1:]]])
    assert write.blob == want.blob
    # The event-time bound: an hour of the listener's time later, a held event is applied too.
    (late,) = logic.on_batch(catalog.attach([_event("g2", ghost, T0 + 10_000, "like"),
                                              _event("k9", known, T0 + 10_000 + 3_600_001)]))[0]
    assert late.held == 1 and late.released == [None] and logic.state.held is None


def test_a_snapshot_from_before_the_dedupe_moved_keeps_its_24_ids() -> None:
    items = stream(30, seed=15)
    old = UserProfileLogic(TasteLearner(), None)
    run(old, [items])
    profile = old.state.profile
    profile.recent_event_ids = [event_id_hash(e.event_id) for e, _, _ in items[-24:]]
    state = UserState.__new__(UserState)
    state.__setstate__((2, profile, old.state.window.entries, ""))  # the layout of the step before
    logic = UserProfileLogic(TasteLearner(), pickle.dumps(state))
    assert len(logic.state.dedupe) == 24 and logic.state.profile.recent_event_ids == []
    (write,) = run(logic, [items[-24:]])
    assert write.duplicates == 24 and write.applied == 0


def test_a_resume_with_a_short_horizon_continues_bit_for_bit() -> None:
    config = DedupeConfig(horizon_ms=4 * 3_600_000)
    items = stream(200, seed=16)
    plan = batches(items, [30] * 7)
    straight = UserProfileLogic(TasteLearner(), None, dedupe=config)
    run(straight, plan)
    logic = UserProfileLogic(TasteLearner(), None, dedupe=config)
    for batch in plan:
        run(logic, [batch])
        logic = UserProfileLogic(TasteLearner(), logic.snapshot(), dedupe=config)
    assert logic.snapshot() == straight.snapshot()
