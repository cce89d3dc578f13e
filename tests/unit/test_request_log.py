"""Request ids, the access log and JSON logs (serving/request_log.py, encore/logs.py), on an app with
the real middleware and no broker or Redis behind it."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from encore.logs import JsonFormatter, TextFormatter
from encore.logs import configure_logging as configure
from serving.config import ServingConfig
from serving.request_log import current_request_id, install_request_log

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def make_app(**config: object) -> FastAPI:
    app = FastAPI()
    inner = logging.getLogger("encore.test.handler")

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str | None]:
        inner.info("handling %s", thing_id)
        return {"request_id": current_request_id()}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    install_request_log(app, ServingConfig(brokers=["x:1"], redis_url="redis://x:1/0", **config))  # type: ignore[arg-type]
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app(), raise_server_exceptions=False)


def test_a_sane_request_id_is_kept_and_echoed(client: TestClient) -> None:
    for given in ("req-1", "0af7651916cd43dd8448eb211c80319c", "a" * 128, "tenant:42/req=7@edge"):
        response = client.get("/v1/things/a", headers={"X-Request-ID": given})
        assert response.headers["x-request-id"] == given
        assert response.json() == {"request_id": given}


@pytest.mark.parametrize("given", ["", "has space", "a" * 129, "semi;colon", "quote\"", "é"])
def test_a_bad_or_overlong_request_id_is_replaced(client: TestClient, given: str) -> None:
    response = client.get("/v1/things/a", headers={"X-Request-ID": given.encode("utf-8")})
    echoed = response.headers["x-request-id"]
    assert echoed != given and HEX32.match(echoed)
    assert response.json() == {"request_id": echoed}


def test_an_absent_request_id_is_made_and_every_request_gets_its_own(client: TestClient) -> None:
    ids = {client.get("/v1/things/a").headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20 and all(HEX32.match(i) for i in ids)
    assert current_request_id() is None  # nothing leaks out of a request


def test_errors_and_unknown_routes_get_an_id_too(client: TestClient) -> None:
    assert HEX32.match(client.get("/nope").headers["x-request-id"])
    assert client.get("/boom").status_code == 500


def test_the_access_log_has_id_route_status_latency(client: TestClient,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        client.get("/v1/things/secret-user-42?token=abc", headers={"X-Request-ID": "req-9"})
        client.get("/nope")
        client.get("/boom")
    access = [r for r in caplog.records if r.name == "encore.access"]
    assert [(r.method, r.route, r.status) for r in access] == [  # type: ignore[attr-defined]
        ("GET", "/v1/things/{thing_id}", 200), ("GET", "unmatched", 404), ("GET", "/boom", 500)]
    first = access[0]
    assert first.request_id == "req-9" and first.latency_ms >= 0  # type: ignore[attr-defined]
    access_text = " ".join(f"{r.getMessage()} {vars(r)}" for r in access)
    assert "secret-user-42" not in access_text and "token" not in access_text  # templates, no query
    handler_line = next(r for r in caplog.records if r.name == "encore.test.handler")
    assert handler_line.request_id == "req-9"  # type: ignore[attr-defined]


def test_the_access_log_can_be_turned_off(caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(make_app(access_log=False))
    with caplog.at_level(logging.INFO):
        response = client.get("/v1/things/a")
    assert HEX32.match(response.headers["x-request-id"])
    assert not [r for r in caplog.records if r.name == "encore.access"]


def test_the_request_log_wraps_the_other_middleware() -> None:
    """Installed last, it is outermost: it sees the status other middleware answer with."""
    app = make_app()
    assert app.user_middleware[0].cls.__name__ == "RequestIdMiddleware"


def test_json_lines_carry_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(tag="api[0]"))
    logger = logging.getLogger("encore.access")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        TestClient(make_app()).get("/v1/things/x", headers={"X-Request-ID": "req-json"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["logger"] == "encore.access" and line["level"] == "INFO" and line["process"] == "api[0]"
    assert line["request_id"] == "req-json" and line["route"] == "/v1/things/{thing_id}"
    assert line["status"] == 200 and isinstance(line["latency_ms"], float)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line["ts"])
    assert line["message"].startswith("GET /v1/things/{thing_id} 200 ")


def test_json_lines_hold_tracebacks_and_odd_values() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("now",), sys.exc_info())
    record.raw = b"\xffbytes"
    record.partitions = {("t", 1): 5}
    line = json.loads(formatter.format(record))
    assert line["message"] == "failed now" and "ValueError: bad" in line["exc"]
    assert line["raw"] == "\ufffdbytes" and line["partitions"]


def test_text_lines_show_the_fields() -> None:
    record = logging.LogRecord("encore.access", logging.INFO, __file__, 1, "GET / 200", (), None)
    record.request_id = "r-1"
    line = TextFormatter("flow[0]").format(record)
    assert line.endswith("INFO flow[0] encore.access: GET / 200 [request_id=r-1]")


def test_configure_logging_leaves_a_test_runners_handlers_alone() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    configure("INFO", log_format="json", stream=io.StringIO())
    assert root.handlers == before  # pytest's capture handlers are there: basicConfig's rule
