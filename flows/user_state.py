"""Per-user state in the dataflow: the live profile and the listener's models, event by event in
partition order.

Per event, in this order (`docs/models.md`, "Wiring plan"):

1. `m = drift.lr_multiplier` (1 unless the listener's taste is moving);
2. the taste learner applies the event to the profile with `min_rate × m`; it also drops a
   duplicate `event_id`, and a duplicate teaches nothing below;
3. `engagement = model.learn_event(event, track, m)` (the per-user engagement model); when it
   learned, `drift.update(engagement.surprise, event.ts)`;
4. the listener's co-listening window turns a new positive into pair increments, and the event is
   handed on with its track and pairs in the step's output; `track_signals_of` sums a whole
   batch of outputs per track (item-statistics contributions, pairs in both directions) for the
   track-keyed step (`flows.track_state`);
5. the listener's artist history turns a positive for a new artist into that artist's co-occurrence
   with every artist already in the history (`online_models.artist_memory`), which
   `artist_signals_of` sums per artist for the artist-keyed step (`flows.artist_state`).

The profile written to Redis carries the model's 312 bytes of weights and the drift detector's 24
bytes. A listener's model is created at their first event: `UserModel.from_prior(...)` of what the
`priors` hook returns for that event's time (see `PriorLookup`).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields

from bytewax.operators import StatefulBatchLogic

from flows.progress import Position
from flows.track_state import TrackSignal, TrackSignals
from online_models.artist_memory import ArtistHistory
from online_models.co_listening import ListeningWindow, PairIncrement
from online_models.drift import DriftDetector
from online_models.logistic import OnlineLogisticRegression
from online_models.taste import TasteLearner
from online_models.user_model import UserModel
from ranking.ranker import features_one
from schemas.events import Event
from schemas.profile_codec import UserProfile, encode_profile
from schemas.tracks import Track

PriorLookup = Callable[[int], tuple[int, OnlineLogisticRegression] | None]
"""The warm start of new listeners: event time (ms) of a listener's first event → `(period, model)`
of the global model to copy (`UserModel.from_prior`; the period is stored as the profile's
`prior_period`), or None for a model of zeros. It must give the same answer for the same time on a
replay (the global-model wiring serves immutable per-period models for this; see
`online_models.global_model`). It is called once per listener, on the worker that owns them."""


def ranker_features_before(profile: UserProfile, track: Track) -> tuple[float, ...]:
    """The learned ranker's features of `track` but the engagement one (`ranking.ranker`)."""
    popularity = track.popularity / 100.0 if track.popularity is not None else 0.5
    return features_one(profile, track.feature_vector(), track.genres, track.artist, popularity, 0.5)[:-1]


def no_prior(ts_ms: int) -> None:
    """The default `PriorLookup`: no global model yet, every listener starts from zeros."""
    return None


@dataclass(frozen=True, slots=True)
class ProfileWrite:
    """What one user's batch of events produced, for the sinks."""

    version: int
    blob: bytes | None
    """The encoded profile; None when every event of the batch was a duplicate."""
    position: Position
    """The newest message of the batch: the flow has processed up to here."""
    applied: int
    duplicates: int
    learned: list[tuple[Event, Track | None, list[PairIncrement]]]
    """The applied events, each with its track and the co-listening pairs it made: the track signals
    `track_signals_of` sums."""
    artists_entered: list[tuple[str, list[str]]] = field(default_factory=list)
    examples: list[tuple[tuple[float, ...], int, float]] = field(default_factory=list)
    """The learned ranker's examples of this batch: (features before the event, label, weight)
    (`flows.ranker_step`)."""
    """Artists that entered the listener's history in this batch, each with the artists already
    there (`ArtistHistory.learn_one`): what `flows.artist_state.artist_signals_of` sums."""


def track_signals_of(items: list[tuple[str, ProfileWrite]]) -> list[tuple[str, TrackSignal]]:
    """From a batch of the per-user step's outputs (many users) to the track-keyed step's input: item
    contributions and co-listening pairs summed per track over the whole batch, so the track step
    gets one signal per touched track rather than one per user and track."""
    signals = TrackSignals()
    for _, write in items:
        for event, track, pairs in write.learned:
            if pairs:
                signals.add_pairs(pairs)
            signals.add_event(event, track)
    return signals.keyed()


class UserState:
    """Everything the flow keeps for one listener: profile, engagement model, drift, window.

    Pickled as the profile plus the models' own exact byte forms (float32 weights, the 24-byte drift
    state, the window's entries), so a resumed flow continues bit for bit."""

    __slots__ = ("artists", "drift", "model", "profile", "window")

    def __init__(self, profile: UserProfile, model: UserModel | None = None,
                 drift: DriftDetector | None = None, window: ListeningWindow | None = None,
                 artists: ArtistHistory | None = None) -> None:
        self.profile = profile
        self.artists = artists if artists is not None else ArtistHistory()
        self.model = model
        """None until the listener's next event (a new listener, or one resumed without weights)."""
        self.drift = drift if drift is not None else DriftDetector()
        self.window = window if window is not None else ListeningWindow()

    @classmethod
    def from_profile(cls, profile: UserProfile) -> UserState:
        """State around a profile alone (an old snapshot): its stored weights and drift, if any."""
        _fill_missing_fields(profile)
        model = UserModel.from_bytes(profile.model_weights) if profile.model_weights else None
        drift = DriftDetector.from_bytes(profile.drift) if profile.drift else None
        return cls(profile, model, drift)

    def sync(self) -> None:
        """Put the models' exact bytes into the profile (what is encoded, and what is pickled)."""
        if self.model is not None:
            self.profile.model_weights = self.model.to_bytes()
        self.profile.drift = self.drift.to_bytes()

    def __getstate__(self) -> tuple:
        # The profile holds the model's and the detector's bytes (`sync` runs after every batch).
        # The history as one string: no object shared with the profile, so the pickle's bytes do not
        # depend on which strings happen to be the same object.
        return (2, self.profile, self.window.entries, "\x1f".join(self.artists.artists))

    def __setstate__(self, state: tuple) -> None:
        profile, entries = state[1], state[2]
        restored = UserState.from_profile(profile)
        self.profile, self.model, self.drift = restored.profile, restored.model, restored.drift
        self.window = ListeningWindow(entries=entries)
        names = state[3].split("\x1f") if state[0] >= 2 and state[3] else []
        self.artists = ArtistHistory(dict.fromkeys(names))


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


def load_user_state(resume_state: bytes | None) -> UserState:
    """The state a snapshot holds: a `UserState`, or a bare `UserProfile` from before the models."""
    if resume_state is None:
        return UserState(UserProfile(""))
    state = pickle.loads(resume_state)
    return state if isinstance(state, UserState) else UserState.from_profile(state)


class UserProfileLogic(StatefulBatchLogic[tuple[Event, Track | None, Position], ProfileWrite, bytes]):
    """Applies a batch of one user's events, then emits the profile once: one write per batch.

    `priors` is the warm-start hook of new listeners (`PriorLookup`; default: none). The snapshot is
    the pickled `UserState` (exact floats), so a resumed flow continues from precisely the state an
    uninterrupted one had."""

    def __init__(self, learner: TasteLearner, resume_state: bytes | None,
                 priors: PriorLookup = no_prior) -> None:
        self.learner = learner
        self.priors = priors
        # Bytewax builds the logic without its key; the first event names the user.
        self.state = load_user_state(resume_state)

    def _new_model(self, ts_ms: int) -> UserModel:
        prior = self.priors(ts_ms)
        if prior is None:
            return UserModel()
        period, global_model = prior
        self.state.profile.prior_period = period
        return UserModel.from_prior(global_model)

    def on_batch(
        self, values: list[tuple[Event, Track | None, Position]]
    ) -> tuple[Iterable[ProfileWrite], bool]:
        state = self.state
        profile = state.profile
        first = values[0][0]
        if not profile.user_id:
            profile.user_id = first.user_id
        if state.model is None:
            state.model = self._new_model(first.ts)
            state.sync()
        learn_taste, model, drift, window = self.learner.learn_one, state.model, state.drift, state.window
        history = state.artists
        learned: list[tuple[Event, Track | None, list[PairIncrement]]] = []
        entered: list[tuple[str, list[str]]] = []
        examples: list[tuple[tuple[float, ...], int, float]] = []
        applied = 0
        newest = values[0][2]
        for event, track, position in values:
            if position.offset > newest.offset:
                newest = position
            m = drift.lr_multiplier
            # The ranker's features as the profile stands before the event (a duplicate is
            # dropped below, before they are used).
            before = ranker_features_before(profile, track) if track is not None else None
            if not learn_taste(profile, event, track, m):
                continue  # a duplicate: it teaches nothing
            applied += 1
            engagement = model.learn_event(event, track, m)
            if engagement is not None:
                drift.update(engagement.surprise, event.ts)
                if before is not None:
                    examples.append(((*before, 2.0 * (engagement.predicted - 0.5)), engagement.label,
                                     engagement.weight))
            learned.append((event, track, window.learn_one(event)))
            if track is not None and track.artist:
                partners = history.learn_one(event, track.artist)
                if partners is not None:
                    entered.append((track.artist, partners))
        if applied:
            state.sync()
            blob: bytes | None = encode_profile(profile)
        else:
            blob = None
        write = ProfileWrite(profile.version, blob, newest, applied, len(values) - applied, learned, entered,
                             examples)
        return ([write], StatefulBatchLogic.RETAIN)

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)
