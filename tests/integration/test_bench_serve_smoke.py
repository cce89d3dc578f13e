"""`encore bench serve --quick` end to end: the real stack (broker, Redis, flow, API, ingest producer,
load generator, each its own process) on the shipped 600-track sample for a few seconds.

No timing is asserted (the machine is shared; benchmarks print numbers instead). What must hold:
the report prints and its JSON twin parses, every scheduled request is accounted for, the
recommendation requests were answered with 200 and a non-empty list, the ingest producer's events
were acknowledged, and the flow caught up with them afterwards.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from encore.cli import main as encore_main

pytestmark = pytest.mark.integration


def test_bench_serve_quick_reports_every_request(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "serve.json"
    # The CLI runs the benchmark as its own module in a child process: capture at the file descriptors.
    code = encore_main(["bench", "serve", "--quick", "--json", str(out)])
    printed = capfd.readouterr().out
    assert code == 0, printed[-3000:]
    assert "Encore serving latency benchmark" in printed
    assert "recommendations (known user)" in printed

    report = orjson.loads(out.read_bytes())
    assert "--quick" in report["command"]
    (phase,) = report["phases"]
    assert phase["tracks"] == 600 and not phase["synthetic"]
    assert phase["api_rss_bytes"] > 0

    healthz, mix = phase["loads"]
    assert healthz["name"] == "healthz" and mix["name"].startswith("mix@")
    rows = {row["endpoint"]: row for row in mix["rows"]}
    assert set(rows) >= {"recommendations (known user)", "recommendations (cold start)", "rank", "all"}
    for label in ("recommendations (known user)", "recommendations (cold start)"):
        assert rows[label]["ok"] > 0, rows[label]
        assert rows[label]["errors"] == {}, rows[label]
    # Every scheduled request is counted once: as a 200 or under an error code (rank may not exist yet).
    scheduled = int(mix["rate"] * mix["duration_s"])
    assert rows["all"]["ok"] + sum(rows["all"]["errors"].values()) == scheduled
    assert rows["all"]["p50"] <= rows["all"]["p99"] <= rows["all"]["max"]

    ingest = phase["ingest"]
    assert ingest["acked"] > 0 and ingest["failed"] == 0
    assert phase["catch_up_s"] is not None, "the flow did not catch up with the ingest load"
