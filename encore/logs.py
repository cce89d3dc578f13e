"""Logging for every Encore process: the CLI, each flow worker, the API."""

from __future__ import annotations

import logging


def configure_logging(level: str, tag: str = "") -> None:
    """Log lines with time, level and logger; `tag` (e.g. `flow[1]`) tells processes apart."""
    prefix = f"{tag} " if tag else ""
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s")
    # Client libraries narrate every connection at INFO; keep their warnings only.
    for noisy in ("kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
