"""The browser tests run against the same real stack as the integration tests (a Tansu broker and a
redis-server on free ports, a fresh namespace per test)."""

from tests.integration.conftest import env, services  # noqa: F401 - fixtures, used by name
