"""Fixtures shared by the unit tests."""

from tests.tracing_support import spans  # noqa: F401 - the in-memory span exporter fixture
