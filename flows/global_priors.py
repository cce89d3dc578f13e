"""Each worker's view of the published global models: the warm start of new listeners.

`GlobalPriorReader` is the `priors` hook of the per-user step (`flows.user_state.PriorLookup`):
`reader(ts_ms)` = `(period, model)` of the newest model published for a period ≤
`prior_period(ts_ms)` (two periods before the listener's first event), or None. It follows
`GlobalPriors.prior_for`, reading Redis instead of a dict:

- `global_model_latest` is checked at most every `refresh_s` (as `flows.track_lookup` checks the
  catalog version), and at once when a listener's prior period is newer than the latest known (the
  answer could still change, and the merger may have published since): one GET per new listener
  only while the merger is behind. Nothing newer than `latest` is looked for.
- Models are immutable once published (SET NX), and the merger publishes periods in increasing
  order, so both a model found and a period ≤ latest found missing are final: answers are cached
  per target period and a new listener usually costs one dict lookup.
- Published periods can be sparse (a period in which no replica closed is not published), so a
  target without a model looks back, one MGET per `_CHUNK` periods, at most `SEARCH_PERIODS`
  (two days: the models' TTL).
"""

from __future__ import annotations

import time

from flows.redis_io import RedisClient, with_retries
from online_models.global_model import GLOBAL_PERIOD_MS, prior_period
from online_models.logistic import OnlineLogisticRegression
from schemas.keys import KeyLayout
from schemas.values import is_model_weights

SEARCH_PERIODS = 2 * 24 * 3600 * 1000 // GLOBAL_PERIOD_MS
"""How far back a target period without a model looks (the published models live two days)."""
_CHUNK = 16
_CACHE_LIMIT = 4096

Prior = tuple[int, OnlineLogisticRegression]


class GlobalPriorReader:
    """The `priors(ts_ms)` callable of the per-user step, backed by the published models in Redis."""

    def __init__(self, client: RedisClient, keys: KeyLayout, refresh_s: float = 1.0) -> None:
        self._client = client
        self._keys = keys
        self._refresh_s = refresh_s
        self._latest = -1
        self._checked_at = float("-inf")
        self._models: dict[int, OnlineLogisticRegression | None] = {}
        """Period → its model, or None when it was found missing (only periods ≤ `_latest`)."""
        self._answers: dict[int, Prior | None] = {}
        """Target period → the answer (only targets ≤ `_latest`, so the answer is final)."""

    def __call__(self, ts_ms: int) -> Prior | None:
        wanted = prior_period(ts_ms)
        self._refresh(force=wanted > self._latest)
        target = min(wanted, self._latest)
        if target < 0:
            return None
        if target in self._answers:
            return self._answers[target]
        answer = self._search(target)
        if len(self._answers) >= _CACHE_LIMIT:
            self._answers.clear()
        self._answers[target] = answer
        return answer

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < self._refresh_s:
            return
        self._checked_at = now
        raw = with_retries(lambda: self._client.get(self._keys.global_model_latest), "global model check")
        if raw is not None:
            self._latest = max(self._latest, int(raw))

    def _search(self, target: int) -> Prior | None:
        lowest = max(0, target - SEARCH_PERIODS)
        period = target
        while period >= lowest:
            unknown = [p for p in range(period, max(lowest, period - _CHUNK + 1) - 1, -1)
                       if p not in self._models]
            if unknown:
                self._fetch(unknown)
            for p in range(period, max(lowest, period - _CHUNK + 1) - 1, -1):
                model = self._models.get(p)
                if model is not None:
                    return p, model
            period -= _CHUNK
        return None

    def _fetch(self, periods: list[int]) -> None:
        keys = [self._keys.global_model(p) for p in periods]
        values = with_retries(lambda: self._client.mget(keys), "global model read")
        if len(self._models) + len(periods) > _CACHE_LIMIT:
            self._models.clear()
        for period, raw in zip(periods, values, strict=True):
            valid = is_model_weights(raw)
            self._models[period] = OnlineLogisticRegression.from_bytes(raw) if valid else None
