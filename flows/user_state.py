"""Per-user state in the dataflow: the live profile and the listener's models, event by event in
partition order.

Per message of one listener, in this order (`docs/models.md`, "Wiring plan"):

1. a **forget** (`schemas.events.Forget`, sent by `DELETE /v1/users/{id}`) replaces the whole state
   by a tombstone (below) and tells the sink to delete the listener's Redis keys;
2. an event from before a forget (event time ≤ the tombstone's) is dropped and counted;
3. the **dedupe** (`flows.dedupe.EventDedupe`, event ids over `ENCORE_DEDUPE_HORIZON_S` of event
   time): a duplicate teaches nothing; an event too old to tell goes to the dead letters as
   `too_late` (`dedupe_full` when a listener's dedupe memory is full);
4. the listener's co-listening window turns a new positive into pair increments, and the event is
   handed on in the step's output with its pairs; `track_signals_of` sums a whole batch of outputs
   per track (item-statistics contributions, pairs in both directions) for the track-keyed step
   (`flows.track_state`). Neither needs the catalog, so every accepted event does this at once;
5. the learners that need the event's track: `m = drift.lr_multiplier`; the taste learner applies
   the event to the profile with `min_rate × m`; `engagement = model.learn_event(event, track, m)`;
   when it learned, `drift.update(engagement.surprise, event.ts)`; the artist history turns a
   positive for a new artist into that artist's co-occurrence with every artist already there
   (`online_models.artist_memory`), which `artist_signals_of` sums per artist.

**Events ahead of the catalog.** With a catalog source (`tracks`, the flow's `TrackLookup`), an
event whose track the catalog does not know yet is *held* instead of teaching nothing: step 5 waits
for it. The profile, model and drift detector are then kept as a checkpoint from before the first
held event, plus the log of every event accepted since (`HeldEvents`). When a held event's track
arrives (looked up before each batch, and every `HoldConfig.recheck_s` by the step's timer while
anything is held), the three learners are rebuilt from the checkpoint by applying the log in order,
the held event at its own place. The rule: **a held event is applied where it stood in the
listener's partition order, as if the catalog had known its track then.** The profile therefore
does not depend on when the track arrived, nor on where a crash and replay cut the stream: a replay
that finds the track at once applies the event at once, and ends in the same state. Until then the
profile (and `profile_version`) shows the events before the first held one and the known ones after
it. The bound (`HoldConfig`): at most `max_events` events (held ones and the ones after them) and
`max_wait_ms` of the listener's event time; past either, the oldest held event is applied without
its track (counted, no taste: the rule before holding), and the checkpoint moves on. Only that
expiry depends on the catalog at the moment it happens. Item statistics and co-listening learn a
held event on receipt (step 4); its artist enters the history when it is applied.

**Forgetting.** A `Forget` drops profile, models, dedupe, window, artist history and held events;
what stays is a tombstone of one number, `forgotten_through_ms`: the newest event time accepted
before the forget. Later events newer than it start a fresh profile; an older one (a player
retrying a batch from before the deletion) is dropped and counted as `events_forgotten`, so it
cannot bring the listener back. The snapshot holds the tombstone, so neither does a resume.

The profile written to Redis carries the model's 312 bytes of weights and the drift detector's 24
bytes. A listener's model is created at their first accepted event: `UserModel.from_prior(...)` of
what the `priors` hook returns for that event's time (see `PriorLookup`).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime, timedelta

from bytewax.operators import StatefulBatchLogic

from flows.dead_letters import DeadLetter
from flows.dedupe import DAY_MS, DEDUPE_CONFIG, NO_TIME, DedupeConfig, EventDedupe, Verdict
from flows.progress import Position
from flows.track_state import TrackSignal, TrackSignals
from online_models.artist_memory import ArtistHistory
from online_models.co_listening import ListeningWindow, PairIncrement
from online_models.drift import DriftDetector
from online_models.logistic import OnlineLogisticRegression
from online_models.taste import TasteLearner
from online_models.user_model import UserModel
from ranking.ranker import features_one
from schemas.events import Event, Forget, Message
from schemas.profile_codec import UserProfile, encode_profile
from schemas.tracks import Track, decode_track, scaled_features

PriorLookup = Callable[[int], tuple[int, OnlineLogisticRegression] | None]
"""The warm start of new listeners: event time (ms) of a listener's first event → `(period, model)`
of the global model to copy (`UserModel.from_prior`; the period is stored as the profile's
`prior_period`), or None for a model of zeros. It must give the same answer for the same time on a
replay (the global-model wiring serves immutable per-period models for this; see
`online_models.global_model`). It is called once per listener, on the worker that owns them."""

TrackSource = Callable[[Iterable[str]], dict[str, Track | None]]
"""The catalog as the step sees it: track ids → the track, or None when unknown
(`flows.track_lookup.TrackLookup.tracks`)."""

UserItem = tuple[Message, Track | None, Position]
"""What the step receives per message: an event with its track (None: the catalog does not know
it), or a control message; and where it came from."""


def ranker_features_before(profile: UserProfile, track: Track) -> tuple[float, ...]:
    """The learned ranker's features of `track` but the engagement one (`ranking.ranker`)."""
    popularity = track.popularity / 100.0 if track.popularity is not None else 0.5
    return features_one(profile, scaled_features(track), track.genres, track.artist, popularity, 0.5)[:-1]


def no_prior(ts_ms: int) -> None:
    """The default `PriorLookup`: no global model yet, every listener starts from zeros."""
    return None


@dataclass(frozen=True)
class HoldConfig:
    """How long events ahead of the catalog wait for their track (see the module's rules)."""

    max_events: int = 64
    """Most events kept per listener while the oldest held one waits: the held ones and every
    accepted event after it (each ~0.5 KB, plus one checkpoint of the profile and models, ~2 KB)."""
    max_wait_ms: int = DAY_MS
    """Most event time (before the listener's newest accepted event) a held event waits."""
    recheck_s: float = 1.0
    """Wall-clock seconds between the step's looks at the catalog while something is held."""


HOLD_CONFIG = HoldConfig()
_NEW, _DUPLICATE = Verdict.NEW, Verdict.DUPLICATE


@dataclass(frozen=True, slots=True)
class ProfileWrite:
    """What one user's batch of events produced, for the sinks."""

    version: int
    blob: bytes | None
    """The encoded profile; None when the batch changed nothing (duplicates, held events only)."""
    position: Position | None
    """The newest message of the batch: the flow has processed up to here. A timer's write (held
    events released) carries the listener's newest message seen, or None after a resume."""
    applied: int
    duplicates: int
    learned: list[tuple[Event, Track | None, list[PairIncrement]]]
    """The accepted events, each with its track (None while held) and the co-listening pairs it
    made: the track signals `track_signals_of` sums."""
    artists_entered: list[tuple[str, list[str]]] = field(default_factory=list)
    """Artists that entered the listener's history in this batch, each with the artists already
    there (`ArtistHistory.learn_one`): what `flows.artist_state.artist_signals_of` sums."""
    examples: list[tuple[tuple[float, ...], int, float]] = field(default_factory=list)
    """The learned ranker's examples of this batch: (features before the event, label, weight)
    (`flows.ranker_step`). A held event gives its example when it is applied."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    """Events refused here (`too_late`, `dedupe_full`): to the dead-letter topic."""
    forget: bool = False
    """A `Forget` was applied: delete the listener's keys (before writing `blob`, if any)."""
    held: int = 0
    """Events of the batch held for their track."""
    released: list[Track | None] = field(default_factory=list)
    """Held events applied in this batch, by their track (None: applied without it, expired)."""
    forgotten: int = 0
    """Events dropped because they predate a forget."""


def track_signals_of(items: list[tuple[str, ProfileWrite]]) -> list[tuple[str, TrackSignal]]:
    """From a batch of the per-user step's outputs (many users) to the track-keyed step's input: item
    contributions and co-listening pairs summed per track over the whole batch, so the track step
    gets one signal per touched track rather than one per user and track. A released held event
    brings its track's genres (its contributions went with it on receipt)."""
    signals = TrackSignals()
    for _, write in items:
        for event, track, pairs in write.learned:
            if pairs:
                signals.add_pairs(pairs)
            signals.add_event(event, track)
        for track in write.released:
            if track is not None:
                signals.add_track(track)
    return signals.keyed()


@dataclass(slots=True)
class PendingEvent:
    """One entry of the log kept while an event is held."""

    event: Event
    track: Track | None
    waiting: bool
    """Held for its track; False once known (or given up on)."""
    released: bool = False
    """Just stopped waiting: applied at the next rebuild, and learned by the artist history then."""


@dataclass(slots=True)
class HeldEvents:
    """The checkpoint of the track-dependent learners before the first held event, and every event
    accepted since, in order."""

    profile: UserProfile
    model: bytes
    drift: bytes
    log: list[PendingEvent]

    def oldest_waiting(self) -> PendingEvent:
        """The first held event (the log starts with it)."""
        return next(p for p in self.log if p.waiting)

    def waiting_tracks(self) -> set[str]:
        return {p.event.track_id for p in self.log if p.waiting}

    def to_state(self) -> tuple:
        log = [(p.event.to_json(), p.track.to_json() if p.track is not None else None, p.waiting)
               for p in self.log]
        return (self.profile, self.model, self.drift, log)

    @classmethod
    def from_state(cls, state: tuple) -> HeldEvents:
        profile, model, drift, log = state
        _fill_missing_fields(profile)
        entries = [PendingEvent(Event.model_validate_json(e), decode_track(t) if t is not None else None, w)
                   for e, t, w in log]
        return cls(profile, model, drift, entries)


class UserState:
    """Everything the flow keeps for one listener: profile, engagement model, drift, window, artist
    history, dedupe, held events; or, once forgotten, a tombstone.

    Pickled as the profile plus the models' own exact byte forms (float32 weights, the 24-byte drift
    state, the window's entries, the dedupe's sorted ids), so a resumed flow continues bit for bit."""

    __slots__ = ("_dedupe_raw", "artists", "dedupe", "drift", "forgotten_through_ms", "held", "model",
                 "profile", "window")

    def __init__(self, profile: UserProfile, model: UserModel | None = None,
                 drift: DriftDetector | None = None, window: ListeningWindow | None = None,
                 artists: ArtistHistory | None = None, dedupe: EventDedupe | None = None) -> None:
        self.profile = profile
        self.artists = artists if artists is not None else ArtistHistory()
        self.model = model
        """None until the listener's next event (a new listener, or one resumed without weights)."""
        self.drift = drift if drift is not None else DriftDetector()
        self.window = window if window is not None else ListeningWindow()
        self.dedupe = dedupe if dedupe is not None else EventDedupe()
        self.held: HeldEvents | None = None
        self.forgotten_through_ms = NO_TIME
        """Set by a forget: events up to this event time are from before it."""
        self._dedupe_raw: bytes | None = None
        """The dedupe's bytes as unpickled, until `load_user_state` reads them with its horizon."""

    @classmethod
    def from_profile(cls, profile: UserProfile, dedupe: DedupeConfig = DEDUPE_CONFIG) -> UserState:
        """State around a profile alone (an old snapshot): its stored weights, drift and the dedupe
        ids it carried (at its `as_of` time), if any."""
        _fill_missing_fields(profile)
        model = UserModel.from_bytes(profile.model_weights) if profile.model_weights else None
        drift = DriftDetector.from_bytes(profile.drift) if profile.drift else None
        ids = EventDedupe.from_hashes(profile.recent_event_ids, profile.as_of_ms, dedupe)
        profile.recent_event_ids = []
        return cls(profile, model, drift, dedupe=ids)

    @classmethod
    def tombstone(cls, user_id: str, forgotten_through_ms: int, dedupe: DedupeConfig) -> UserState:
        state = cls(UserProfile(user_id), dedupe=EventDedupe(dedupe))
        state.forgotten_through_ms = forgotten_through_ms
        return state

    def sync(self) -> None:
        """Put the models' exact bytes into the profile (what is encoded, and what is pickled)."""
        if self.model is not None:
            self.profile.model_weights = self.model.to_bytes()
        self.profile.drift = self.drift.to_bytes()

    def checkpoint(self) -> HeldEvents:
        """A copy of the track-dependent learners, to rebuild from (`HeldEvents`)."""
        assert self.model is not None
        copy = pickle.loads(pickle.dumps(self.profile, protocol=pickle.HIGHEST_PROTOCOL))
        return HeldEvents(copy, self.model.to_bytes(), self.drift.to_bytes(), [])

    def restore(self, held: HeldEvents) -> None:
        self.profile = pickle.loads(pickle.dumps(held.profile, protocol=pickle.HIGHEST_PROTOCOL))
        self.model = UserModel.from_bytes(held.model)
        self.drift = DriftDetector.from_bytes(held.drift)

    def __getstate__(self) -> tuple:
        # The profile holds the model's and the detector's bytes (`sync` runs after every batch).
        # The history as one string: no object shared with the profile, so the pickle's bytes do not
        # depend on which strings happen to be the same object.
        held = self.held.to_state() if self.held is not None else None
        return (3, self.profile, self.window.entries, "\x1f".join(self.artists.artists),
                self.dedupe.to_bytes(), held, self.forgotten_through_ms)

    def __setstate__(self, state: tuple) -> None:
        self.__init__(UserProfile(""))
        self.restore_from(state, DEDUPE_CONFIG)

    def restore_from(self, state: tuple, dedupe: DedupeConfig) -> None:
        profile, entries = state[1], state[2]
        restored = UserState.from_profile(profile, dedupe)
        self.profile, self.model, self.drift = restored.profile, restored.model, restored.drift
        self.window = ListeningWindow(entries=entries)
        names = state[3].split("\x1f") if state[0] >= 2 and state[3] else []
        self.artists = ArtistHistory(dict.fromkeys(names))
        self.dedupe = restored.dedupe
        self.held, self.forgotten_through_ms = None, NO_TIME
        if state[0] >= 3:
            self._dedupe_raw = state[4]
            self.dedupe = EventDedupe.from_bytes(state[4], dedupe)
            self.held = HeldEvents.from_state(state[5]) if state[5] is not None else None
            self.forgotten_through_ms = state[6]


def _fill_missing_fields(profile: UserProfile) -> None:
    """A profile unpickled from an older `UserProfile` lacks the fields added since: give them their
    defaults (pickle restores `__dict__` without running `__init__`)."""
    for spec in fields(UserProfile):
        if spec.name in profile.__dict__:
            continue
        if spec.default is not MISSING:
            setattr(profile, spec.name, spec.default)
        elif spec.default_factory is not MISSING:
            setattr(profile, spec.name, spec.default_factory())


def load_user_state(resume_state: bytes | None, dedupe: DedupeConfig = DEDUPE_CONFIG) -> UserState:
    """The state a snapshot holds: a `UserState`, or a bare `UserProfile` from before the models."""
    if resume_state is None:
        return UserState(UserProfile(""), dedupe=EventDedupe(dedupe))
    state = pickle.loads(resume_state)
    if isinstance(state, UserState):
        if dedupe != DEDUPE_CONFIG and state._dedupe_raw is not None:  # unpickled with the default
            state.dedupe = EventDedupe.from_bytes(state._dedupe_raw, dedupe)
        state._dedupe_raw = None
        return state
    return UserState.from_profile(state, dedupe)


@dataclass
class _Batch:
    """What one call of the step produced, gathered into its `ProfileWrite`."""

    learned: list[tuple[Event, Track | None, list[PairIncrement]]] = field(default_factory=list)
    entered: list[tuple[str, list[str]]] = field(default_factory=list)
    examples: list[tuple[tuple[float, ...], int, float]] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    released: list[Track | None] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    held: int = 0
    forgotten: int = 0
    forget: bool = False
    changed: bool = False


class UserProfileLogic(StatefulBatchLogic[UserItem, ProfileWrite, bytes]):
    """Applies a batch of one user's messages, then emits the profile once: one write per batch.

    `priors` is the warm-start hook of new listeners (`PriorLookup`; default: none). `dedupe` sets
    the horizon. With `tracks` (the catalog), events ahead of the catalog are held (`hold`);
    without, such an event is applied at once without its track. The snapshot is the pickled
    `UserState` (exact floats), so a resumed flow continues from precisely the state an
    uninterrupted one had."""

    def __init__(self, learner: TasteLearner, resume_state: bytes | None,
                 priors: PriorLookup = no_prior, *, dedupe: DedupeConfig = DEDUPE_CONFIG,
                 tracks: TrackSource | None = None, hold: HoldConfig = HOLD_CONFIG) -> None:
        self.learner = learner
        self.priors = priors
        self.dedupe = dedupe
        self.tracks = tracks
        self.hold = hold
        # Bytewax builds the logic without its key; the first event names the user.
        self.state = load_user_state(resume_state, dedupe)
        self.last_position: Position | None = None
        """The newest message seen since the logic was built: what a timer's write is timed from."""

    def _new_model(self, ts_ms: int) -> UserModel:
        prior = self.priors(ts_ms)
        if prior is None:
            return UserModel()
        period, global_model = prior
        self.state.profile.prior_period = period
        return UserModel.from_prior(global_model)

    # -- the step ------------------------------------------------------------------------------

    def on_batch(self, values: list[UserItem]) -> tuple[Iterable[ProfileWrite], bool]:
        out = _Batch()
        if self.state.held is not None:
            self._release(out)  # tracks that arrived since the last batch
        newest = values[0][2]
        for message, track, position in values:
            if position.offset > newest.offset:
                newest = position
            if isinstance(message, Forget):
                self._forget(message, out)
            else:
                self._receive(message, track, position, out)
        self.last_position = newest
        return ([self._write(out, newest)], StatefulBatchLogic.RETAIN)

    def notify_at(self) -> datetime | None:
        if self.state.held is None or self.tracks is None:
            return None
        return datetime.now(UTC) + timedelta(seconds=self.hold.recheck_s)

    def on_notify(self) -> tuple[Iterable[ProfileWrite], bool]:
        out = _Batch()
        if self.state.held is None or not self._release(out):
            return ([], StatefulBatchLogic.RETAIN)
        return ([self._write(out, self.last_position)], StatefulBatchLogic.RETAIN)

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)

    # -- one message ---------------------------------------------------------------------------

    def _receive(self, event: Event, track: Track | None, position: Position, out: _Batch) -> None:
        state = self.state
        if event.ts <= state.forgotten_through_ms:
            out.forgotten += 1
            return
        verdict = state.dedupe.seen(event.event_id, event.ts)
        if verdict is _DUPLICATE:
            out.duplicates += 1
            return
        if verdict is not _NEW:
            out.letters.append(self._refusal(event, verdict, position))
            return
        if not state.profile.user_id:
            state.profile.user_id = event.user_id
        if state.model is None:
            state.model = self._new_model(event.ts)
            state.sync()
        out.learned.append((event, track, state.window.learn_one(event)))
        held = state.held
        if track is None and self.tracks is not None:
            if held is None:
                held = state.held = state.checkpoint()
            held.log.append(PendingEvent(event, None, waiting=True))
            out.held += 1
        else:
            self._learn(event, track, out, fresh=True)
            out.applied += 1
            out.changed = True
            if held is not None:
                held.log.append(PendingEvent(event, track, waiting=False))
        if held is not None:
            self._bound(out)

    def _refusal(self, event: Event, verdict: Verdict, position: Position) -> DeadLetter:
        dedupe = self.state.dedupe
        if verdict is Verdict.TOO_LATE:
            reason = (f"event time {event.ts} is before {dedupe.cutoff_ms()}: more than the dedupe "
                      f"horizon ({self.dedupe.horizon_ms // 1000} s) before the listener's newest "
                      "event, so a repeat can no longer be told apart")
        else:
            reason = f"the listener's dedupe memory is full ({self.dedupe.max_ids} ids in one bucket)"
        # The raw bytes are not carried past decoding: the value is the event as decoded (canonical JSON).
        return DeadLetter(key=event.user_id.encode(), raw=event.to_json(), code=verdict.value,
                          reason=reason, position=position)

    def _learn(self, event: Event, track: Track | None, out: _Batch, fresh: bool) -> None:
        """Step 5: the learners that need the track (profile, engagement model, drift); when the
        event is `fresh` (applied for the first time, not rebuilt), also the artist history and the
        learned ranker's example."""
        state = self.state
        model, drift, profile = state.model, state.drift, state.profile
        assert model is not None
        m = drift.lr_multiplier
        # The ranker's features as the profile stands before the event.
        before = ranker_features_before(profile, track) if fresh and track is not None else None
        self.learner.learn_one(profile, event, track, m)
        engagement = model.learn_event(event, track, m)
        if engagement is not None:
            label, weight, predicted = engagement
            drift.update(abs(label - predicted), event.ts)  # `engagement.surprise`
            if before is not None:
                out.examples.append(((*before, 2.0 * (predicted - 0.5)), label, weight))
        if fresh and track is not None and track.artist:
            partners = state.artists.learn_one(event, track.artist)
            if partners is not None:
                out.entered.append((track.artist, partners))

    def _forget(self, message: Forget, out: _Batch) -> None:
        state = self.state
        through = max(state.dedupe.newest_ms, state.forgotten_through_ms)
        self.state = UserState.tombstone(message.user_id, through, self.dedupe)
        out.forget = True
        out.changed = False  # nothing to write unless events after the forget start a new profile

    # -- held events ---------------------------------------------------------------------------

    def _release(self, out: _Batch) -> bool:
        """Give held events whose track the catalog now knows their track, and rebuild; True if any."""
        held = self.state.held
        assert held is not None and self.tracks is not None
        found = {t: track for t, track in self.tracks(held.waiting_tracks()).items() if track is not None}
        if not found:
            return False
        for pending in held.log:
            if pending.waiting and pending.event.track_id in found:
                pending.track, pending.waiting, pending.released = found[pending.event.track_id], False, True
        self._rebuild(out)
        return True

    def _bound(self, out: _Batch) -> None:
        """Keep the log within `HoldConfig`: past a bound, look the held tracks up once more, then
        apply the oldest held event without its track, until both bounds hold."""
        held, hold = self.state.held, self.hold
        looked = False
        while held is not None and (
            len(held.log) > hold.max_events
            or held.oldest_waiting().event.ts < self.state.dedupe.newest_ms - hold.max_wait_ms
        ):
            if not looked:
                looked = True
                if self._release(out):
                    held = self.state.held
                    continue
            oldest = held.oldest_waiting()
            oldest.waiting, oldest.released = False, True  # given up: applied without its track
            self._rebuild(out)
            held = self.state.held

    def _rebuild(self, out: _Batch) -> None:
        """The track-dependent learners from the checkpoint, the log applied in order; the
        checkpoint then moves to just before the first event still held (none: holding ends)."""
        state, held = self.state, self.state.held
        assert held is not None
        state.restore(held)
        rest: HeldEvents | None = None
        for pending in held.log:
            if pending.waiting:
                if rest is None:
                    rest = state.checkpoint()
                rest.log.append(pending)
                continue
            self._learn(pending.event, pending.track, out, fresh=pending.released)
            if pending.released:
                pending.released = False
                out.applied += 1
                out.released.append(pending.track)
            if rest is not None:
                rest.log.append(pending)
        state.held = rest
        out.changed = True

    def _write(self, out: _Batch, position: Position | None) -> ProfileWrite:
        state = self.state
        blob: bytes | None = None
        if out.changed:
            state.sync()
            blob = encode_profile(state.profile)
        return ProfileWrite(state.profile.version, blob, position, out.applied, out.duplicates, out.learned,
                            artists_entered=out.entered, examples=out.examples,
                            dead_letters=out.letters, forget=out.forget,
                            held=out.held, released=out.released, forgotten=out.forgotten)
