"""Per-user state in the dataflow: the live profile, updated event by event in partition order."""

from __future__ import annotations

import pickle
from collections.abc import Iterable

from bytewax.operators import StatefulBatchLogic

from online_models.taste import TasteLearner
from schemas.events import Event
from schemas.profile_codec import UserProfile, encode_profile
from schemas.tracks import Track

ProfileWrite = tuple[int, bytes]
"""(profile_version, encoded profile) as the sink writes it."""


class UserProfileLogic(StatefulBatchLogic[tuple[Event, Track | None], ProfileWrite, bytes]):
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

    def on_batch(self, values: list[tuple[Event, Track | None]]) -> tuple[Iterable[ProfileWrite], bool]:
        applied = False
        if not self.profile.user_id:
            self.profile.user_id = values[0][0].user_id
        for event, track in values:
            applied |= self.learner.learn_one(self.profile, event, track)
        if not applied:
            return ((), StatefulBatchLogic.RETAIN)
        return ([(self.profile.version, encode_profile(self.profile))], StatefulBatchLogic.RETAIN)

    def snapshot(self) -> bytes:
        return pickle.dumps(self.profile, protocol=pickle.HIGHEST_PROTOCOL)
