"""Serving-time ranking, pure: the catalog view, candidate sources, scoring, diversity, moods, reasons.

No I/O here: `serving` reads Redis and calls these; `flows` uses only the shared feature code.
"""
