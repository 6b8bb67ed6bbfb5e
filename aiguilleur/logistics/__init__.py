"""Transport itineraries: road networks, fleet routing and re-planning, allocation of supplies.

A leaf package: it imports neither :mod:`aiguilleur.grid` nor the forecasting
and health packages.
"""

from __future__ import annotations

__all__: list[str] = []
