"""Serving the console: a store made ready (the world initialised on a fresh one), the
responder and the live feed running beside uvicorn, everything stopped on exit."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiguilleur.api.app import ApiOptions, Console, create_app
from aiguilleur.errors import ValidationError
from aiguilleur.ops.centre import CentreOptions, OpsCentre

__all__ = ["ServeOptions", "console", "initialise", "serve"]

SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class ServeOptions:
    """Where to listen and what world a fresh store starts with.

    Parameters
    ----------
    store
        Store URL (``sqlite:///path.db`` or a path; ``postgresql+psycopg://...``).
    host, port
        Where uvicorn listens (loopback by default).
    case
        Bundled case (or ``.m`` file) of the world of a fresh store.
    fleet
        Add the fleets on the bundled roads to a fresh store.
    seed
        Seed of the fleet world.
    api
        :class:`~aiguilleur.api.app.ApiOptions` (tokens, limits, CORS).
    centre
        :class:`~aiguilleur.ops.centre.CentreOptions` (snapshots, responder policy).
    """

    store: str = "aiguilleur-ops.db"
    host: str = "127.0.0.1"
    port: int = 8000
    case: str = "case1888"
    fleet: bool = True
    seed: int = 1
    api: ApiOptions = field(default_factory=ApiOptions)
    centre: CentreOptions = field(default_factory=CentreOptions)

    def __post_init__(self) -> None:
        p = self.port
        if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 65535:
            raise ValidationError(f"port: expected 0 to 65535, got {p!r}")
        if not isinstance(self.host, str) or not self.host:
            raise ValidationError("host: expected a host name or address")


def initialise(
    centre: OpsCentre, case: str, *, fleet: bool, seed: int, say: Callable[[str], None]
) -> int:
    """Write the world events into an empty store (as ``aiguilleur ops init``); returns how many."""
    if centre.last_seq:
        return 0
    from aiguilleur.ops.fleet import fleet_world
    from aiguilleur.ops.world import grid_world

    when = datetime.now(UTC).replace(microsecond=0)
    say(f"a fresh store: the grid {case} at a secure operating point (AC-OPF)...")
    world: list[Any] = [grid_world(case, at=when)]
    if fleet:
        say("the fleets on the bundled roads (first plans)...")
        world.append(fleet_world(seed=seed, shift_start=when))
    res = centre.ingest(world)
    bad = [r for r in res if not r.ok]
    if bad:
        raise ValidationError(bad[0].error or "refused")
    return len(res)


@contextmanager
def console(opts: ServeOptions, say: Callable[[str], None] | None = None) -> Iterator[Console]:
    """The centre on ``opts.store`` with its world, the responder and the feed running."""
    from aiguilleur.ops.feed import FeedHub
    from aiguilleur.ops.store import open_store
    from aiguilleur.ops.stream import ResponderThread

    tell = say or (lambda m: print(m, file=sys.stderr, flush=True))
    centre = OpsCentre(open_store(opts.store, create=True), opts.centre)
    try:
        initialise(centre, opts.case, fleet=opts.fleet, seed=opts.seed, say=tell)
        responder = ResponderThread(centre).start()
        hub = FeedHub(centre).start()
        try:
            yield Console(centre, hub, responder)
        finally:
            hub.stop()
            responder.stop()
    finally:
        centre.close()


def check_listen(host: str, port: int) -> None:
    """Refuse, before any work, an address the server could not listen on (one line)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise ValidationError(f"--host {host[:100]!r}: {why}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as e:
            raise ValidationError(
                f"{host[:100]}:{port}: cannot listen there ({e.strerror or e})"
            ) from None


def serve(opts: ServeOptions, say: Callable[[str], None] | None = None) -> None:
    """Run the console until interrupted (uvicorn, one process)."""
    import uvicorn

    check_listen(opts.host, opts.port)  # before the world is made (seconds on case1888)

    # The event loop sends to every stream client; each send gives up the GIL and waits
    # for it again behind the ingest and responder threads. At Python's default 5 ms
    # switch interval that wait dominated the stream's p99 (100 clients, case118:
    # 207-261 ms at 5 ms, 152-172 ms at 0.5 ms, interleaved runs, load 4).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    tell = say or (lambda m: print(m, file=sys.stderr, flush=True))
    with console(opts, tell) as con:
        app = create_app(con, opts.api)
        if not len(opts.api.tokens):
            tell(
                "warning: no tokens (AIGUILLEUR_TOKENS or --tokens): every request will be refused"
            )
        tell(
            f"aiguilleur console on http://{opts.host}:{opts.port}/ (store {con.centre.store.url})"
        )
        config = uvicorn.Config(
            app,
            host=opts.host,
            port=opts.port,
            log_level="warning",
            access_log=False,
            ws="websockets-sansio",
            lifespan="off",
        )
        uvicorn.Server(config).run()
