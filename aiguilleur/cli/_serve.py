"""``aiguilleur serve``: the operator's console (REST, live stream, dashboard)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aiguilleur.cli._common import _guard

__all__ = ["serve"]


@_guard
def serve(
    store: Annotated[
        str,
        typer.Option(
            "--store",
            metavar="URL",
            help="sqlite:///path.db (or a path), postgresql+psycopg://user@host/db.",
        ),
    ] = "aiguilleur-ops.db",
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on.", min=0, max=65535)
    ] = 8000,
    case: Annotated[
        str, typer.Option("--case", help="Grid of a fresh store: bundled case name or .m file.")
    ] = "case1888",
    fleet: Annotated[
        bool, typer.Option("--fleet/--no-fleet", help="Fleets in a fresh store.")
    ] = True,
    tokens: Annotated[
        Path | None,
        typer.Option(
            "--tokens",
            metavar="FILE",
            help="role:token lines (roles: operator, viewer); default: $AIGUILLEUR_TOKENS, "
            "else aiguilleur-tokens beside the store (made with one operator token).",
        ),
    ] = None,
    open_reads: Annotated[
        bool, typer.Option("--open-reads", help="Reads need no token (writes always do).")
    ] = False,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Allow browser calls from this origin (repeatable)."),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", help="Requests per second per token (0: no limit).", min=0)
    ] = 200.0,
) -> None:
    """Serve the operator's console: REST API, live stream and dashboard on one port.

    A fresh store is first initialised as `aiguilleur ops init` does (the
    grid at a secure AC operating point and the fleets: about 15 s on
    case1888; --case case118 starts in a few seconds). The responder runs in
    the background; operators' approvals through the API are events in the
    log. Needs the api extra: pip install 'aiguilleur[api]'.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        from aiguilleur.errors import AiguilleurError

        raise AiguilleurError(
            f"serve needs the api extra ({e.name} is missing): pip install 'aiguilleur[api]'"
        ) from None
    import os
    import sys

    from aiguilleur.api import ApiOptions, ServeOptions, load_tokens, token_file
    from aiguilleur.api import serve as run
    from aiguilleur.errors import ValidationError

    where = Path(store.split("///", 1)[1]) if store.startswith("sqlite:///") else Path(store)
    folder = where.parent if "://" not in store or store.startswith("sqlite") else Path(".")
    if not folder.is_dir():  # said about the store, before a token file is made beside it
        raise ValidationError(f"{store}: the folder {folder} does not exist")
    if tokens is None and not os.environ.get("AIGUILLEUR_TOKENS"):
        # one command gives a working console: a token file beside the store
        tokens = folder / "aiguilleur-tokens"
        _, made = token_file(tokens)
        print(
            f"tokens: {tokens} ({'made now, ' if made else ''}the operator's token is in it)",
            file=sys.stderr,
        )
    opts = ServeOptions(
        store=store,
        host=host,
        port=port,
        case=case,
        fleet=fleet,
        api=ApiOptions(
            tokens=load_tokens(tokens),
            read_requires_token=not open_reads,
            cors_origins=tuple(cors_origin or ()),
            rate_per_s=rate,
        ),
    )
    run(opts)
