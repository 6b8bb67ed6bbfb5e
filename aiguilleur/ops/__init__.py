"""The operations centre: events, a durable log, the state folded from it, and the responder.

It composes the leaves (grid, logistics, forecast, health) into the operator's
loop: an event is validated and stored (:mod:`aiguilleur.ops.events`,
:mod:`aiguilleur.ops.store`), folded into the state (:mod:`aiguilleur.ops.state`),
and answered by the analyses it affects, with a verified proposal and alarms
(:mod:`aiguilleur.ops.responder`), all through :class:`OpsCentre`. Scenarios
replay timelines of events (:mod:`aiguilleur.ops.scenario`).
"""

from aiguilleur.ops.centre import CentreOptions, IngestResult, OpsCentre
from aiguilleur.ops.responder import Reaction, Responder, ResponderOptions
from aiguilleur.ops.state import State, fold, fold_all
from aiguilleur.ops.store import MemoryStore, SqlStore, Store, open_store

__all__ = [
    "CentreOptions",
    "IngestResult",
    "MemoryStore",
    "OpsCentre",
    "Reaction",
    "Responder",
    "ResponderOptions",
    "SqlStore",
    "State",
    "Store",
    "fold",
    "fold_all",
    "open_store",
]
