"""Several API workers: the shared metrics directory `encore serve` prepares, and rate limits that
say they are counted per worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from encore.cli import metrics_dir
from serving.limits import RATE_LIMIT_SCOPE, rate_limited
from serving.metrics import MULTIPROCESS_DIR_ENV


def test_serve_with_workers_shares_metrics_in_a_fresh_directory_it_removes(monkeypatch) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)
    with metrics_dir(1) as none:
        assert none is None and MULTIPROCESS_DIR_ENV not in os.environ
    with metrics_dir(2) as path:
        assert path is not None and path.is_dir() and not any(path.iterdir())
        assert os.environ[MULTIPROCESS_DIR_ENV] == str(path)
        (path / "counter_1.db").write_bytes(b"x")
    assert not path.exists() and MULTIPROCESS_DIR_ENV not in os.environ


def test_a_directory_the_operator_set_is_emptied_of_old_files(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "histogram_123.db").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, str(tmp_path))
    with metrics_dir(1) as path:
        assert path == tmp_path and not list(tmp_path.glob("*.db"))
    assert (tmp_path / "keep.txt").exists()


@pytest.mark.parametrize("who", ["the key 'player'", "this listener"])
def test_a_429_says_its_limit_is_counted_per_worker(who: str) -> None:
    error = rate_limited(who, 20.0, 0.2)
    assert error.status == 429 and error.code == "rate_limited"
    assert "per API worker process" in error.message and error.message.startswith(who)
    assert error.headers == {"Retry-After": "1", "X-RateLimit-Scope": RATE_LIMIT_SCOPE}
    assert error.details == [{"limit_per_s": 20.0, "scope": "worker"}]
