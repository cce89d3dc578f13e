"""Per-user state in the dataflow: the live profile, updated event by event in partition order."""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from dataclasses import dataclass

from bytewax.operators import StatefulBatchLogic

from flows.progress import Position
from online_models.taste import TasteLearner
from schemas.events import Event
from schemas.profile_codec import UserProfile, encode_profile
from schemas.tracks import Track


@dataclass(frozen=True, slots=True)
class ProfileWrite:
    """What one user's batch of events produced, for the sink."""

    version: int
    blob: bytes | None
    """The encoded profile; None when every event of the batch was a duplicate."""
    position: Position
    """The newest message of the batch: the flow has processed up to here."""
    applied: int
    duplicates: int


class UserProfileLogic(StatefulBatchLogic[tuple[Event, Track | None, Position], ProfileWrite, bytes]):
    """Applies a batch of one user's events, then emits the profile once: one write per batch.

    The snapshot is the pickled profile (exact floats), so a resumed flow continues from precisely
    the state an uninterrupted one had.
    """

    def __init__(self, learner: TasteLearner, resume_state: bytes | None) -> None:
        self.learner = learner
        # Bytewax builds the logic without its key; the first event names the user.
        self.profile: UserProfile = (
            pickle.loads(resume_state) if resume_state is not None else UserProfile("")
        )

    def on_batch(
        self, values: list[tuple[Event, Track | None, Position]]
    ) -> tuple[Iterable[ProfileWrite], bool]:
        if not self.profile.user_id:
            self.profile.user_id = values[0][0].user_id
        applied = 0
        newest = values[0][2]
        for event, track, position in values:
            applied += self.learner.learn_one(self.profile, event, track)
            if position.offset > newest.offset:
                newest = position
        blob = encode_profile(self.profile) if applied else None
        write = ProfileWrite(self.profile.version, blob, newest, applied, len(values) - applied)
        return ([write], StatefulBatchLogic.RETAIN)

    def snapshot(self) -> bytes:
        return pickle.dumps(self.profile, protocol=pickle.HIGHEST_PROTOCOL)
