"""The operator's console: an authenticated REST and live-stream API over the operations
centre, and the dashboard it serves (FastAPI; ``pip install 'aiguilleur[api]'``).

:func:`create_app` builds the app over an :class:`~aiguilleur.ops.centre.OpsCentre`;
:func:`serve` runs it with the responder and the live feed (``aiguilleur serve``).
"""

from aiguilleur.api._auth import ROLES, Principal, Tokens, load_tokens, token_file
from aiguilleur.api.app import ApiOptions, Console, create_app
from aiguilleur.api.server import ServeOptions, console, initialise, serve

__all__ = [
    "ROLES",
    "ApiOptions",
    "Console",
    "Principal",
    "ServeOptions",
    "Tokens",
    "console",
    "create_app",
    "initialise",
    "load_tokens",
    "serve",
    "token_file",
]
