"""Request body size limit (ASGI middleware) and per-token rate limiting (token buckets)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from starlette.exceptions import HTTPException

__all__ = ["BodyLimit", "RateLimiter", "SecurityHeaders"]


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class _TooLarge(HTTPException):
    """Raised from ``receive`` inside the endpoint: the app's HTTP error handler answers 413."""


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        msg = {"error": f"request body: larger than {limit} bytes", "field": "body"}
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    n = int(v)
                except ValueError:
                    await _send_json(
                        send,
                        400,
                        {"error": "content-length: not a number", "field": "content-length"},
                    )
                    return
                if n > limit:
                    await _send_json(send, 413, msg)
                    return
        seen = 0
        started = False

        async def counted() -> Any:
            nonlocal seen
            m = await receive()
            if m["type"] == "http.request":
                seen += len(m.get("body", b""))
                if seen > limit:
                    raise _TooLarge(413, msg["error"])
            return m

        async def tracking_send(m: Any) -> None:
            nonlocal started
            if m["type"] == "http.response.start":
                started = True
            await send(m)

        try:
            await self.app(scope, counted, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, msg)


class RateLimiter:
    """Token buckets per key: ``rate_per_s`` sustained, ``burst`` at once (thread-safe)."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = float(rate_per_s)
        self.burst = float(burst)
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """0 when the request may go on, else the seconds to wait before the next one."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            level, at = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - at) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            if len(self._buckets) > 10_000:  # forget idle clients (full buckets)
                full = [
                    k
                    for k, (lv, t) in self._buckets.items()
                    if lv + (now - t) * self.rate >= self.burst
                ]
                for k in full:
                    del self._buckets[k]
            return (1.0 - level) / self.rate


class SecurityHeaders:
    """``nosniff``, no referrer, and the dashboard's Content-Security-Policy (pure ASGI)."""

    def __init__(self, app: Any, csp: str, prefix: str) -> None:
        self.app = app
        self.csp = csp.encode()
        self.prefix = prefix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ui = str(scope.get("path", "")).startswith(self.prefix)

        async def with_headers(m: Any) -> None:
            if m["type"] == "http.response.start":
                h = list(m.get("headers", []))
                names = {k.lower() for k, _ in h}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if ui:
                    extra.append((b"content-security-policy", self.csp))
                h.extend((k, v) for k, v in extra if k not in names)
                m = {**m, "headers": h}
            await send(m)

        await self.app(scope, receive, with_headers)
