"""`encore lag`: the flow's lag per partition as a table, read straight from Kafka and Redis
(no API needed); `--watch` refreshes it, `--json` prints what `GET /v1/ops/lag` answers."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from encore.settings import Settings

if TYPE_CHECKING:  # the Kafka and Redis clients load only when the command runs
    from serving.lag import LagReport
    from serving.ops_stats import FlowStats, Window

CLEAR = "\x1b[H\x1b[2J"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--watch", action="store_true", help="refresh the table until Ctrl-C")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (--watch)")
    parser.add_argument("--json", action="store_true", help="print the lag as JSON, as GET /v1/ops/lag does")


def _n(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


COLUMNS = ("TOPIC", "PARTITION", "END OFFSET", "PROCESSED", "LAG (MSGS)", "LAG (S)", "RATE (MSG/S)")


def render(report: LagReport, stats: FlowStats | None = None, window: Window | None = None) -> str:
    """The lag table, a total line per topic, and a line about the flow's throughput and health.

    `PROCESSED` is the next offset the flow will process (processed + 1), as a Kafka commit holds it.
    """
    rows: list[tuple[str, ...]] = []
    for topic in report.topics:
        for p in topic.partitions:
            rows.append((p.topic, str(p.partition), _n(p.end_offset), _n(p.processed_offset),
                         _n(p.lag_messages), _n(p.lag_seconds, 2), _n(p.rate_per_s, 1)))
        rows.append((topic.topic, "total", "", "", _n(topic.lag_messages), _n(topic.lag_seconds, 2),
                     _n(topic.rate_per_s, 1)))
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        padded = (cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True))
        return "  ".join([first.ljust(widths[0]), *padded])

    as_of = datetime.fromtimestamp(report.as_of_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    out = [f"consumer group {report.group}   {as_of}   lag {report.lag_messages:,} messages, "
           f"{report.lag_seconds:.2f} s", "", line(COLUMNS)]
    for row in rows:
        out.append(line(row))
        if row[1] == "total":
            out.append("")
    if stats is not None:
        out.append(_flow_line(stats, window))
    return "\n".join(out).rstrip() + "\n"


def _flow_line(stats: FlowStats, window: Window | None) -> str:
    parts = [f"events processed {stats.counters['events_applied']:,}"]
    if window is not None:
        parts[0] += f" ({window.rates['events_applied']:,.1f}/s)"
    fresh = window.freshness if window is not None and window.freshness.count else stats.freshness
    if fresh.count:
        parts.append(f"freshness p50 {_ms(fresh.quantile(0.5))}, p99 {_ms(fresh.quantile(0.99))}")
    dead = ", ".join(f"{reason} {count:,}" for reason, count in sorted(stats.dead_letters.items()))
    parts.append(f"dead letters {stats.dead_letters_total:,}" + (f" ({dead})" if dead else ""))
    age = stats.heartbeat_age_s
    parts.append("flow heartbeat never" if age is None else f"flow heartbeat {age:.1f} s ago")
    return "   ".join(parts)


def run_lag(settings: Settings, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    import logging

    import orjson
    import redis

    from schemas.keys import KeyLayout
    from schemas.topics import Topics
    from serving.lag import KafkaLogReader, LagMonitor, LagUnavailable
    from serving.ops_stats import StatsHistory, read_stats
    from serving.redis_client import connect as connect_redis

    topics = Topics(settings.namespace)
    keys = KeyLayout(settings.namespace)
    client = connect_redis(settings.require_redis(), socket_timeout=5, socket_connect_timeout=3)
    reader = KafkaLogReader(settings.require_kafka().split(","),
                            client_options=settings.kafka_config.kafka_python())
    monitor = LagMonitor(reader, client, keys, topics.consumed, topics.consumer_group, ttl_s=0.0)
    history = StatsHistory()
    clear = args.watch and out.isatty()
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # one line of our own says what failed
    try:
        while True:
            try:
                report = monitor.report()
                stats = read_stats(client, keys)
            except (LagUnavailable, redis.RedisError) as exc:
                print(f"encore lag: {exc}", file=sys.stderr)
                if not args.watch:
                    return 1
            else:
                window = history.add(stats)
                if args.json:
                    text = orjson.dumps(report.to_dict()).decode() + "\n"
                else:
                    text = render(report, stats, window)
                out.write((CLEAR if clear else "") + text + ("" if clear or not args.watch else "\n"))
                out.flush()
            if not args.watch:
                return 0
            time.sleep(max(0.2, args.interval))
    except KeyboardInterrupt:
        return 0
    finally:
        reader.close()
        client.close()
