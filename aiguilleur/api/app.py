"""The FastAPI application: REST over :class:`~aiguilleur.ops.centre.OpsCentre`, the live
stream, and the dashboard's static files.

Each endpoint calls one function of the ``ops`` layer and returns what it
returns; errors are JSON (``{"error": ..., "field": ...}``) with a 4xx status,
never a traceback. Writes need an operator's bearer token; reads a viewer's or
an operator's unless ``read_requires_token`` is off. A missing or unknown
token is 401, a viewer writing 403, too many requests 429 (with Retry-After),
an oversized body 413.

The live stream is a WebSocket at ``/stream?since=<cursor>``: the client's
first message is ``{"token": "..."}`` (tokens never travel in a URL, which
servers log), then the server sends ``hello`` with the cursor it starts from,
``batch`` messages (events, alarms, proposals; see :mod:`aiguilleur.ops.feed`)
and a ``heartbeat`` every few seconds. A client that reconnects with the
``cursor`` of the last message it received gets what it missed, in order,
exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import (
    Depends,
    FastAPI,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi import (
    Path as PathParam,
)
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from aiguilleur.api._auth import Principal, Tokens
from aiguilleur.api._limits import BodyLimit, RateLimiter, SecurityHeaders
from aiguilleur.errors import ValidationError
from aiguilleur.ops import views
from aiguilleur.ops.centre import OpsCentre
from aiguilleur.ops.events import event_json_schema
from aiguilleur.ops.feed import Cursor, FeedBatch, FeedHub, read_feed
from aiguilleur.ops.feed import head as feed_head

__all__ = ["ApiOptions", "create_app"]

log = logging.getLogger("aiguilleur.api")
log.addHandler(logging.NullHandler())

STATIC = Path(__file__).parent / "static"
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class ApiOptions:
    """Settings of the API.

    Parameters
    ----------
    tokens
        Known bearer tokens and their roles (:func:`aiguilleur.api.load_tokens`).
    read_requires_token
        Reads need a token (viewer or operator); off, anyone reaching the port reads.
    max_body_bytes
        Largest request body (413 beyond).
    max_batch
        Most events in one ``POST /events``.
    rate_per_s, burst
        Requests per second per token (per client address without one), and
        how many may come at once; 0 turns the limit off.
    cors_origins
        Origins allowed to call the API from a browser (none by default).
    heartbeat_s
        Seconds between heartbeats on the live stream.
    stream_backlog
        Batches a slow stream client may fall behind before it is closed
        (it reconnects with its cursor and misses nothing).
    """

    tokens: Tokens = field(default_factory=Tokens)
    read_requires_token: bool = True
    max_body_bytes: int = 16 * 1024 * 1024
    max_batch: int = 10_000
    rate_per_s: float = 200.0
    burst: int = 400
    cors_origins: tuple[str, ...] = ()
    heartbeat_s: float = 5.0
    stream_backlog: int = 2000

    def __post_init__(self) -> None:
        if not isinstance(self.tokens, Tokens):
            raise ValidationError("tokens: expected Tokens (see aiguilleur.api.load_tokens)")
        for name in ("max_body_bytes", "max_batch", "burst", "stream_backlog"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValidationError(f"{name}: expected a positive integer, got {v!r}")
        for name in ("rate_per_s", "heartbeat_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf:
                raise ValidationError(f"{name}: expected a non-negative finite number, got {v!r}")
        if self.heartbeat_s <= 0:
            raise ValidationError("heartbeat_s: expected a positive number")
        for o in self.cors_origins:
            if (
                not isinstance(o, str)
                or not o.startswith(("http://", "https://"))
                or o.endswith("/")
            ):
                raise ValidationError(
                    f"cors_origins: {o!r} is not an origin like https://host:port"
                )


# -- response models (the OpenAPI document) ------------------------------------------------


class ErrorBody(BaseModel):
    """What went wrong, naming the field; ``results`` per item for a partly refused batch."""

    error: str
    field: str | None = None
    results: list[IngestItem] | None = None


class IngestItem(BaseModel):
    id: str | None
    seq: int | None
    duplicate: bool = False
    error: str | None = None


class IngestReply(BaseModel):
    """One result per posted event, in order; ``seq`` once committed."""

    results: list[IngestItem]
    stored: int
    duplicates: int
    last_seq: int


class DecisionReply(BaseModel):
    """The event that records an operator's decision, once committed."""

    id: str | None
    seq: int | None
    duplicate: bool = False


Running = Literal["running", "stopped", "failed", "off"]


class Health(BaseModel):
    ok: bool
    last_seq: int
    responder: Running
    feed: Running
    stream_clients: int


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(max_length=2000)] = ""


ErrorBody.model_rebuild()

_Obj = dict[str, Any]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "missing or unknown bearer token",
        403: "the token's role may not do this",
        404: "no such item",
        409: "the item is not in a state that allows this",
        413: "request body too large",
        415: "the body is not JSON (Content-Type)",
        422: "invalid input (the field is named)",
        429: "too many requests (see Retry-After)",
    }
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


_READ = _errors(401, 403, 422, 429)
_WRITE = _errors(401, 403, 404, 409, 413, 422, 429)


class _ApiError(Exception):
    def __init__(self, status: int, error: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.field = field
        self.extra = extra
        self.headers: dict[str, str] = {}


def _body(status: int, error: str, field: str | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "field": field, **extra}, status_code=status)


def _decision_error(e: ValidationError, what: str) -> _ApiError:
    msg = " ".join(str(e).split())
    if "no such" in msg:
        return _ApiError(404, msg, what)
    if " is " in msg and ("not pending" in msg or "already" in msg):
        return _ApiError(409, msg, what)
    return _ApiError(422, msg, what)


# -- auth ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Guard:
    opts: ApiOptions
    limiter: RateLimiter

    def who(self, request: Request) -> Principal | None:
        h = request.headers.get("authorization")
        if h is None:
            return None
        scheme, _, tok = h.partition(" ")
        if scheme.lower() != "bearer" or not tok.strip():
            raise _unauth("authorization: expected 'Bearer <token>'")
        p = self.opts.tokens.check(tok.strip())
        if p is None:
            raise _unauth("authorization: unknown token")
        return p

    def limit(self, request: Request, p: Principal | None) -> None:
        key = f"token:{p.name}" if p else f"addr:{request.client.host if request.client else '-'}"
        wait = self.limiter.take(key)
        if wait > 0:
            e = _ApiError(429, f"too many requests: at most {self.opts.rate_per_s:g} per second")
            e.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            raise e


def _reader(request: Request) -> Principal | None:
    g: _Guard = request.app.state.guard
    p = g.who(request)
    if p is None and g.opts.read_requires_token:
        raise _unauth("authorization: a bearer token is required")
    g.limit(request, p)
    return p


def _writer(request: Request) -> Principal:
    g: _Guard = request.app.state.guard
    p = g.who(request)
    if p is None:
        raise _unauth("authorization: an operator's bearer token is required")
    if not p.can_write:
        raise _ApiError(403, f"authorization: the {p.role} role may only read", "authorization")
    g.limit(request, p)
    return p


Reader = Annotated[Principal | None, Depends(_reader)]
Writer = Annotated[Principal, Depends(_writer)]


# -- the app -------------------------------------------------------------------------------


@dataclass
class Console:
    """What the app serves: the centre, the live feed, and (optionally) the responder thread."""

    centre: OpsCentre
    hub: FeedHub | None = None
    responder: Any = None  # aiguilleur.ops.stream.ResponderThread

    def status(self) -> tuple[Running, Running]:
        r = self.responder
        rs: Running
        hs: Running
        if r is None:
            rs = "off"
        elif r.error is not None:
            rs = "failed"
        elif r._thread.is_alive():
            rs = "running"
        else:
            rs = "stopped"
        h = self.hub
        if h is None:
            hs = "off"
        elif h.error is not None:
            hs = "failed"
        elif h.running:
            hs = "running"
        else:
            hs = "stopped"
        return rs, hs


def create_app(console: Console | OpsCentre, options: ApiOptions | None = None) -> FastAPI:
    """The API and dashboard over ``console`` (an :class:`OpsCentre`, or a :class:`Console`)."""
    opts = ApiOptions() if options is None else options
    con = console if isinstance(console, Console) else Console(console)
    centre = con.centre
    limiter = RateLimiter(opts.rate_per_s, opts.burst)

    app = FastAPI(
        title="aiguilleur operations centre",
        version="0.1.0",
        description=(
            "REST and live stream of the aiguilleur operations centre. Writes need an "
            "operator's bearer token; reads a viewer's or an operator's (unless reads are "
            "open). Errors are JSON naming the field."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.console = con

    # -- errors ---------------------------------------------------------------------------
    @app.exception_handler(_ApiError)
    async def _api_error(_r: Request, e: _ApiError) -> JSONResponse:
        resp = _body(e.status, e.error, e.field, **e.extra)
        resp.headers.update(e.headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, e: RequestValidationError) -> JSONResponse:
        err = e.errors()[0] if e.errors() else {}
        raw = list(err.get("loc", ()))
        kinds = ("query", "path", "body", "header", "cookie")
        loc = [str(x) for x in (raw[1:] if raw and raw[0] in kinds else raw)]
        where = ".".join(loc) or (str(raw[0]) if raw else "request")
        msg = str(err.get("msg", "invalid"))[:200]
        if err.get("type") == "json_invalid":  # its location is a character offset
            where, msg = "body", "not valid JSON"
        return _body(422, f"{where}: {msg}", where)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, e: StarletteHTTPException) -> JSONResponse:
        return _body(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def _crash(_r: Request, e: Exception) -> JSONResponse:
        log.error("internal error: %s", type(e).__name__, exc_info=e)
        return _body(500, "internal error (logged on the server)")

    app.state.guard = _Guard(opts, limiter)

    # -- health ---------------------------------------------------------------------------
    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """Liveness: the log's head and whether the responder and the feed run (no token)."""
        rs, hs = con.status()
        ok = rs in ("running", "off") and hs in ("running", "off")
        n = con.hub.subscribers if con.hub is not None else 0
        return Health(ok=ok, last_seq=centre.last_seq, responder=rs, feed=hs, stream_clients=n)

    @app.get("/whoami", response_model=_Obj, responses=_READ, tags=["health"])
    def whoami(who: Reader) -> Any:
        """The holder and role of the presented token (null without one, when reads are open)."""
        return {"name": who.name if who else None, "role": who.role if who else None}

    # -- events ---------------------------------------------------------------------------
    schema_ref = {"$ref": "#/components/schemas/Event"}

    @app.post(
        "/events",
        status_code=202,
        response_model=IngestReply,
        responses={**_WRITE, **_errors(415)},
        tags=["events"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                schema_ref,
                                {
                                    "type": "array",
                                    "items": schema_ref,
                                    "minItems": 1,
                                    "maxItems": opts.max_batch,
                                },
                            ]
                        }
                    }
                },
            }
        },
    )
    async def post_events(request: Request, who: Writer) -> Any:
        """Post one event or a batch; 202 with each one's sequence number once committed.

        Ids are idempotent: a re-sent event gets its sequence number again
        (``duplicate``). When any event is refused the answer is 422 with every
        item's result: the valid ones are stored, the refused ones name the field.
        """
        ctype = request.headers.get("content-type", "")
        media = ctype.split(";", 1)[0].strip().lower()
        if media and media != "application/json" and not media.endswith("+json"):
            raise _ApiError(
                415,
                f"content-type: expected application/json, got {media[:60]!r}",
                "content-type",
            )
        raw = await request.body()
        doc = _json_body(raw)
        if isinstance(doc, dict):
            items: list[Any] = [doc]
        elif isinstance(doc, list) and doc:
            # an item that is not an object is refused on its own (its JSON text
            # fails as "expected a JSON object"), never taken as JSON-lines text
            items = [x if isinstance(x, dict) else json.dumps(x) for x in doc]
            if len(items) > opts.max_batch:
                raise _ApiError(
                    413, f"body: {len(items)} events, at most {opts.max_batch} in one batch", "body"
                )
        else:
            raise _ApiError(
                422, "body: expected an event object or a non-empty array of events", "body"
            )
        results = await run_in_threadpool(centre.ingest, items)
        if con.hub is not None:
            con.hub.notify()
        out = [_item(r) for r in results]
        refused = [r for r in results if not r.ok]
        if refused:
            r0 = refused[0]
            return _body(
                422,
                f"{len(refused)} of {len(results)} event(s) refused; "
                f"first (item {r0.index}): {r0.error}",
                f"[{r0.index}]",
                results=out,
            )
        # built here rather than through the response model: a batch of thousands of
        # acknowledgements is the hot path (the model documents the same shape)
        return JSONResponse(
            {
                "results": out,
                "stored": sum(1 for r in results if not r.duplicate),
                "duplicates": sum(1 for r in results if r.duplicate),
                "last_seq": max((r.seq or 0) for r in results),
            },
            status_code=202,
        )

    @app.get("/feed", response_model=_Obj, responses=_READ, tags=["events"])
    def get_feed(
        who: Reader,
        since: Annotated[
            str, Query(max_length=60, description="cursor E.A.P or a sequence number")
        ] = "0",
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> Any:
        """Events, alarms and proposals after ``since`` (the live stream's messages, by polling)."""
        cur = _cursor(since)
        b = read_feed(centre, cur, limit)
        return {
            "type": "batch",
            "cursor": str(cur if b is None else b.end),
            "items": [] if b is None else list(b.items),
        }

    @app.get("/feed/head", response_model=_Obj, responses=_READ, tags=["events"])
    def get_feed_head(who: Reader) -> Any:
        """The cursor of the newest item (where a client that has just read the lists starts)."""
        return {"cursor": str(feed_head(centre))}

    def _cursor(since: str) -> Cursor:
        try:
            return Cursor.parse(since, centre)
        except ValidationError as e:
            raise _ApiError(422, str(e), "since") from None

    # -- reads ----------------------------------------------------------------------------
    @app.get("/state", response_model=_Obj, responses=_READ, tags=["state"])
    def get_state(who: Reader) -> Any:
        """The state folded from the log, with alarm counts."""
        return views.state_summary(centre)

    @app.get("/grid/geometry", response_model=_Obj | None, responses=_READ, tags=["grid"])
    def get_grid_geometry(who: Reader) -> Any:
        """Bus positions and branch end points (fetched once; null before a grid exists)."""
        return views.grid_geometry(centre.state())

    @app.get("/grid/loading", response_model=_Obj | None, responses=_READ, tags=["grid"])
    def get_grid_loading(who: Reader) -> Any:
        """Per-branch base-case and worst post-contingency loading of the grid as it stands."""
        return views.grid_loading(centre.state())

    @app.get("/contingencies", response_model=_Obj, responses=_READ, tags=["grid"])
    def get_contingencies(who: Reader) -> Any:
        """Contingencies ranked by risk (probability x impact), and the latest N-1 screen."""
        return views.contingencies(centre)

    @app.get("/proposals", response_model=_Obj, responses=_READ, tags=["proposals"])
    def get_proposals(
        who: Reader,
        status: Literal["pending", "approved", "amended", "rejected", "superseded"] | None = None,
        limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ) -> Any:
        """Proposals (newest last) with their status, explanation, actions and checks."""
        return {"proposals": centre.proposals(status, limit)}

    @app.get(
        "/proposals/{pid}",
        response_model=_Obj,
        responses=_errors(401, 403, 404, 422, 429),
        tags=["proposals"],
    )
    def get_proposal(pid: Annotated[str, PathParam(max_length=200)], who: Reader) -> Any:
        """One proposal."""
        try:
            return centre.proposal(pid)
        except ValidationError as e:
            raise _decision_error(e, "id") from None

    @app.get("/alarms", response_model=_Obj, responses=_READ, tags=["alarms"])
    def get_alarms(
        who: Reader,
        unacknowledged: bool = False,
        limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ) -> Any:
        """Alarms (newest last): severity, time to act, text, acknowledgement."""
        return {"alarms": centre.alarms(unacknowledged=unacknowledged, limit=limit)}

    @app.get("/forecasts", response_model=_Obj, responses=_READ, tags=["state"])
    def get_forecasts(who: Reader) -> Any:
        """The latest forecast of each quantity as P10/P50/P90 series."""
        return views.forecasts(centre.state())

    @app.get(
        "/routes",
        response_model=_Obj,
        responses={
            **_READ,
            200: {
                "content": {"application/geo+json": {"schema": {"type": "object"}}},
                "description": "GeoJSON",
            },
        },
        tags=["fleets"],
    )
    def get_routes(who: Reader) -> Any:
        """The fleets as GeoJSON: routes, vehicles, depots, sites, closures, dropped orders."""
        return _GeoJSON(views.routes(centre.state()))

    @app.get("/roads", response_model=_Obj | None, responses=_READ, tags=["fleets"])
    def get_roads(who: Reader) -> Any:
        """The road network of the fleets as polylines (fetched once)."""
        return views.roads(centre.state())

    # -- decisions ------------------------------------------------------------------------
    @app.post(
        "/proposals/{pid}/approve",
        status_code=202,
        response_model=DecisionReply,
        responses=_WRITE,
        tags=["proposals"],
    )
    def approve(pid: Annotated[str, PathParam(max_length=200)], who: Writer) -> Any:
        """Approve a pending proposal: an event carrying its actions is committed."""
        return _decide(lambda: centre.approve(pid, who.name), "id")

    @app.post(
        "/proposals/{pid}/reject",
        status_code=202,
        response_model=DecisionReply,
        responses=_WRITE,
        tags=["proposals"],
    )
    def reject(
        pid: Annotated[str, PathParam(max_length=200)], who: Writer, body: Decision | None = None
    ) -> Any:
        """Reject a pending proposal (with an optional reason)."""
        reason = body.reason if body is not None else ""
        return _decide(lambda: centre.reject(pid, who.name, reason), "id")

    @app.post(
        "/alarms/{aid}/ack",
        status_code=202,
        response_model=DecisionReply,
        responses=_WRITE,
        tags=["alarms"],
    )
    def acknowledge(aid: Annotated[str, PathParam(max_length=200)], who: Writer) -> Any:
        """Acknowledge an alarm."""
        return _decide(lambda: centre.acknowledge(aid, who.name), "id")

    def _decide(call: Callable[[], Any], what: str) -> Any:
        try:
            r = call()
        except ValidationError as e:
            raise _decision_error(e, what) from None
        if con.hub is not None:
            con.hub.notify()
        return DecisionReply(id=r.id, seq=r.seq, duplicate=r.duplicate)

    # -- live stream ----------------------------------------------------------------------
    @app.websocket("/stream")
    async def stream(ws: WebSocket, since: str | None = None) -> None:
        await _stream(ws, since)

    async def _stream(ws: WebSocket, since: str | None) -> None:
        await ws.accept()
        hub = con.hub
        if hub is None:
            await _refuse(ws, 503, "the live feed is not running")
            return
        who: Principal | None = None
        try:
            got = await asyncio.wait_for(ws.receive(), timeout=10.0)
            if got.get("type") == "websocket.disconnect":
                return
            first = got.get("text")  # a binary frame is not a token message
            msg = json.loads(first) if isinstance(first, str) and len(first) < 10_000 else None
            tok = msg.get("token") if isinstance(msg, dict) else None
            if not isinstance(first, str):
                raise ValueError("binary frame")
        except (TimeoutError, ValueError, RecursionError, WebSocketDisconnect):
            await _refuse(ws, 401, 'stream: send {"token": ...} first')
            return
        if isinstance(tok, str) and tok:
            who = opts.tokens.check(tok)
            if who is None:
                await _refuse(ws, 401, "authorization: unknown token")
                return
        elif opts.read_requires_token:
            await _refuse(ws, 401, "authorization: a bearer token is required")
            return
        key = f"token:{who.name}" if who else f"addr:{ws.client.host if ws.client else '-'}"
        if limiter.take(key) > 0:
            await _refuse(ws, 429, "too many requests")
            return
        try:  # store reads: off the event loop
            if since in (None, ""):
                cur = await run_in_threadpool(feed_head, centre)
            else:
                cur = await run_in_threadpool(Cursor.parse, since, centre)
        except ValidationError as e:
            await _refuse(ws, 422, str(e))
            return
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[FeedBatch | None] = asyncio.Queue()
        overflow = False

        def put(b: FeedBatch) -> None:
            loop.call_soon_threadsafe(_offer, b)

        def _offer(b: FeedBatch | None) -> None:
            nonlocal overflow
            if q.qsize() >= opts.stream_backlog:
                overflow = True
                q.put_nowait(None)
            else:
                q.put_nowait(b)

        await ws.send_text(
            json.dumps({"type": "hello", "cursor": str(cur), "role": who.role if who else None})
        )
        sub = await run_in_threadpool(hub.subscribe, cur, put)
        closed = asyncio.Event()

        async def watch() -> None:
            with contextlib.suppress(Exception):
                while True:
                    m = await ws.receive()
                    if m["type"] == "websocket.disconnect":
                        break
            closed.set()
            _offer(None)

        watcher = asyncio.create_task(watch())
        last = cur
        try:
            while not closed.is_set():
                try:
                    b = await asyncio.wait_for(q.get(), timeout=opts.heartbeat_s)
                except TimeoutError:
                    await ws.send_text(
                        json.dumps(
                            {"type": "heartbeat", "cursor": str(last), "server_time": _utc()}
                        )
                    )
                    continue
                if b is None:
                    if overflow:
                        await ws.close(1013, f"too far behind: reconnect with since={last}")
                    break
                last = b.end
                await ws.send_text(b.text)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            hub.unsubscribe(sub)
            watcher.cancel()

    # -- dashboard ------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> Any:
        return RedirectResponse("/ui/")

    @app.get("/ui/", include_in_schema=False)
    def dashboard() -> Any:
        return FileResponse(
            STATIC / "index.html",
            headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"},
        )

    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")

    if opts.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(opts.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(SecurityHeaders, csp=_CSP, prefix="/ui")
    app.add_middleware(BodyLimit, max_bytes=opts.max_body_bytes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        ev = event_json_schema()
        defs = ev.pop("$defs", {})
        ev.pop("$schema", None)
        comps = doc.setdefault("components", {}).setdefault("schemas", {})
        text = json.dumps({"Event": ev, **defs}).replace("#/$defs/", "#/components/schemas/")
        comps.update(json.loads(text))
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
        doc["paths"]["/healthz"]["get"]["security"] = []
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class _GeoJSON(JSONResponse):
    media_type = "application/geo+json"


def _unauth(msg: str) -> _ApiError:
    e = _ApiError(401, msg, "authorization")
    e.headers["WWW-Authenticate"] = "Bearer"
    return e


async def _refuse(ws: WebSocket, status: int, error: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"type": "error", "status": status, "error": error}))
        await ws.close(4000 + status, error[:120])


def _item(r: Any) -> dict[str, Any]:
    return {"id": r.id, "seq": r.seq, "duplicate": r.duplicate, "error": r.error}


def _json_body(raw: bytes) -> Any:
    """A request body as JSON, bounded in depth; one 422 naming the body otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _ApiError(422, f"body: not UTF-8 text (byte {e.start})", "body") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise _ApiError(
            422, f"body: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})", "body"
        ) from None
    except ValueError as e:  # NaN, Infinity
        raise _ApiError(422, f"body: not valid JSON ({str(e)[:120]})", "body") from None
    except RecursionError:  # the decoder's own bound; events allow far less (see ops.events)
        raise _ApiError(422, "body: JSON nested too deeply", "body") from None


def _no_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a number JSON allows")


def _utc() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
