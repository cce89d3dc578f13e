"""Limits: a cap on request body size, enforced while the body streams in (Content-Length may lie
or be absent), answering 413 with the usual JSON error; and the 429 of the rate limits.

**Rate limits are per worker process.** Each key's and each listener's token bucket
(`serving/auth.py`) lives in the memory of the worker that answers, so with `encore serve --workers
N` on R replicas a client may get up to N × R times the configured rate in all. The 429 says so in
its message, in `details` and in `X-RateLimit-Scope: worker`. A limit that must hold across workers
belongs in front of the API (gateway, load balancer), or configure rate / (N × R).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import ApiError, JsonResponse

RATE_LIMIT_SCOPE = "worker"
"""Where a rate limit is counted: in each API worker process, not shared."""


def rate_limited(who: str, rate_per_s: float, wait_s: float) -> ApiError:
    """The 429 of a rate limit: `who` ("the key 'x'", "this listener") is over `rate_per_s`."""
    return ApiError(
        429, "rate_limited",
        f"{who} is over its limit of {rate_per_s:g} requests/s (counted per API worker process)",
        details=[{"limit_per_s": rate_per_s, "scope": RATE_LIMIT_SCOPE}],
        headers={"Retry-After": str(max(1, round(wait_s))), "X-RateLimit-Scope": RATE_LIMIT_SCOPE})


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refuse(self) -> JsonResponse:
        return JsonResponse(
            {"error": {"code": "body_too_large",
                       "message": f"the request body exceeds {self.max_bytes} bytes", "details": []}},
            status_code=413,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse()(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse()(scope, receive, send)
