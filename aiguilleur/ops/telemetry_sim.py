"""A telemetry simulator: what a SCADA gateway of a grid would publish, on MQTT or NATS.

:class:`TelemetrySimulator` takes a grid at its operating point (the state
of an operations-centre store, or a bundled case at the operating point of
:func:`aiguilleur.ops.world.grid_world`), solves its AC power flow and,
scan after scan, draws what the meters read with the grid leaf's
:func:`~aiguilleur.grid.measurements.simulate_measurements`:

* the metered set is fixed at the start (``redundancy``; ``None``: every
  bus voltage magnitude, P/Q injection and P/Q flow at both ends of every
  in-service branch), each reading with a meter id
  ``<site>.<V|P|Q|PF|QF|PT|QT>.<b<bus id>|l<branch row>>``;
* each scan adds Gaussian noise of the stated standard deviations, drops
  each reading with probability ``dropout`` (a lost scan value), and gives
  each remaining reading a gross error (``gross_error_sigma`` standard
  deviations, random sign) with probability ``gross_error_rate``;
* assets stream one cycle of a bundled C-MAPSS unit per scan as
  ``health_reading`` messages (the unit's degradation towards failure).

Messages follow the layout of :mod:`aiguilleur.ops.telemetry` (at most
``readings_per_message`` readings each; ids ``<run>-<scan>-<part>``), and
are published with QoS 1 (MQTT) or to JetStream with ``Nats-Msg-Id`` set
(NATS); each publication is confirmed by the broker before the next scan.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from aiguilleur.errors import AiguilleurError, ValidationError
from aiguilleur.ops.telemetry import (
    DEFAULT_NATS_STREAM,
    _nats_error,
    broker_address,
    broker_unreachable,
    ensure_stream,
)

__all__ = [
    "SimulatedMessage",
    "SimulationReport",
    "SimulatorOptions",
    "TelemetrySimulator",
    "publish_messages",
    "simulation_grid",
]

_SHORT = {
    "vm": "V",
    "p_inj": "P",
    "q_inj": "Q",
    "p_from": "PF",
    "q_from": "QF",
    "p_to": "PT",
    "q_to": "QT",
}
_UNIT = {
    "vm": "pu",
    "p_inj": "MW",
    "q_inj": "Mvar",
    "p_from": "MW",
    "q_from": "Mvar",
    "p_to": "MW",
    "q_to": "Mvar",
}
_BUS_KINDS = ("vm", "p_inj", "q_inj")


def _num(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, int | float) and math.isfinite(x)


@dataclass(frozen=True)
class SimulatorOptions:
    """How :class:`TelemetrySimulator` draws and paces its scans.

    Parameters
    ----------
    site
        The site in the topics and meter ids (letters, digits, ``-``).
    prefix
        Topic prefix (``aiguilleur``: topics ``aiguilleur/<site>/telemetry``,
        subjects ``aiguilleur.<site>.telemetry``).
    count
        Scans to publish.
    rate_hz
        Scans per second of wall time (0: as fast as the broker confirms).
    redundancy
        Metered readings over state variables, as in
        :class:`~aiguilleur.grid.measurements.SimulationOptions`; ``None``:
        every candidate reading.
    sigma_vm_pu, sigma_power_mw
        Standard deviations of the noise (pu; MW and Mvar).
    dropout
        Probability that a reading is missing from a scan.
    gross_error_rate
        Probability that a reading of a scan carries a gross error.
    gross_error_sigma
        Size of a gross error, in standard deviations of the reading.
    readings_per_message
        Most readings in one message.
    assets
        ``(asset id, C-MAPSS unit of the bundled test file)`` pairs streamed as
        ``health_reading`` messages, one cycle per scan.
    seed
        Seed of the metered set, the noise, dropouts and gross errors.
    start
        Time of the first scan (with a time zone); ``None``: now.
    run
        Prefix of the message ids (``None``: a random one, so that runs
        never collide).
    """

    site: str = "site1"
    prefix: str = "aiguilleur"
    count: int = 10
    rate_hz: float = 1.0
    redundancy: float | None = None
    sigma_vm_pu: float = 0.004
    sigma_power_mw: float = 1.0
    dropout: float = 0.0
    gross_error_rate: float = 0.0
    gross_error_sigma: float = 20.0
    readings_per_message: int = 500
    assets: tuple[tuple[str, int], ...] = ()
    seed: int = 0
    start: datetime | None = None
    run: str | None = None

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$", self.site):
            raise ValidationError(f"site: expected 1 to 64 letters, digits or -, got {self.site!r}")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,100}$", self.prefix) or any(
            c in self.prefix for c in "+#*>"
        ):
            raise ValidationError(f"prefix: expected letters, digits and _./-, got {self.prefix!r}")
        c = self.count
        if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= 10_000_000:
            raise ValidationError(f"count: expected a positive integer, got {c!r}")
        if not _num(self.rate_hz) or not 0 <= self.rate_hz <= 1e5:
            raise ValidationError(f"rate_hz: expected a number in [0, 1e5], got {self.rate_hz!r}")
        r = self.redundancy
        if r is not None and (not _num(r) or not 0 < r < 1e6):
            raise ValidationError(f"redundancy: expected a positive number or None, got {r!r}")
        for name in ("sigma_vm_pu", "sigma_power_mw", "gross_error_sigma"):
            v = getattr(self, name)
            if not _num(v) or not v > 0:
                raise ValidationError(f"{name}: expected a positive number, got {v!r}")
        for name in ("dropout", "gross_error_rate"):
            v = getattr(self, name)
            if not _num(v) or not 0 <= v < 1:
                raise ValidationError(f"{name}: expected a number in [0, 1), got {v!r}")
        n = self.readings_per_message
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 20_000:
            raise ValidationError(f"readings_per_message: expected 1..20000, got {n!r}")
        for k, a in enumerate(self.assets):
            if (
                not isinstance(a, tuple)
                or len(a) != 2
                or not isinstance(a[0], str)
                or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._:@/+#-]{0,63}$", a[0])
                or isinstance(a[1], bool)
                or not isinstance(a[1], int)
                or a[1] < 1
            ):
                raise ValidationError(
                    f"assets[{k}]: expected (asset id, positive C-MAPSS unit), got {a!r}"
                )
        if self.start is not None and self.start.tzinfo is None:
            raise ValidationError("start: needs a time zone")
        if self.run is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$", self.run):
            raise ValidationError(f"run: expected letters, digits and ._-, got {self.run!r}")


@dataclass(frozen=True)
class SimulatedMessage:
    """One message: its kind (``telemetry``, ``health``), id, payload and what was done to it."""

    kind: str
    id: str
    scan: int
    payload: dict[str, Any]
    gross_errors: tuple[dict[str, Any], ...] = ()

    def body(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":")).encode("utf-8")


@dataclass
class SimulationReport:
    """What a simulation published."""

    broker: str
    site: str
    scans: int = 0
    messages: int = 0
    readings: int = 0
    dropped: int = 0
    health_messages: int = 0
    gross_errors: list[dict[str, Any]] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list, repr=False)
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "site": self.site,
            "scans": self.scans,
            "messages": self.messages,
            "readings": self.readings,
            "dropped_readings": self.dropped,
            "health_messages": self.health_messages,
            "gross_errors": list(self.gross_errors),
            "wall_s": self.wall_s,
            "messages_per_s": self.messages / self.wall_s if self.wall_s > 0 else None,
        }


def simulation_grid(case: str | None, store: str | None) -> tuple[Any, datetime | None]:
    """The grid to simulate and the clock to start from.

    From a store: its state's grid (as it stands: trips, dispatch, demand)
    and its clock. From a case: the operating point of
    :func:`~aiguilleur.ops.world.grid_world` (AC-OPF; no N-1 screen), no clock.
    """
    from aiguilleur.ops.state import fold_all

    if store is not None:
        from aiguilleur.ops.centre import OpsCentre
        from aiguilleur.ops.store import open_store

        with OpsCentre(open_store(store, create=False)) as c:
            st = c.state()
        if st.grid is None:
            raise ValidationError(f"{store}: the store holds no grid (run aiguilleur ops init)")
        return st.grid.net, st.clock_dt
    if case is None:
        raise ValidationError("name a case or a store")
    from aiguilleur.ops.world import grid_world

    world = grid_world(case, at=datetime.now(UTC), screen=False)
    st = fold_all([(1, world)])
    assert st.grid is not None
    return st.grid.net, None


class TelemetrySimulator:
    """Scans of a grid's meters and assets' cycles as messages (module docstring)."""

    def __init__(self, net: Any, options: SimulatorOptions | None = None) -> None:
        from aiguilleur.grid import PowerFlowOptions, ac_power_flow
        from aiguilleur.grid.measurements import SimulationOptions, simulate_measurements

        self.net = net
        self.options = o = options or SimulatorOptions()
        self.pf = ac_power_flow(net, PowerFlowOptions(enforce_q_limits=True))
        if not self.pf.converged:
            raise ValidationError(f"{net.name}: the AC power flow of the grid does not converge")
        self._sim = SimulationOptions(
            redundancy=None, sigma_vm_pu=o.sigma_vm_pu, sigma_power_mw=o.sigma_power_mw
        )
        full = simulate_measurements(net, self.pf, self._sim, seed=o.seed)
        if o.redundancy is None:
            self.select = np.arange(len(full))
        else:
            chosen = simulate_measurements(
                net,
                self.pf,
                SimulationOptions(
                    redundancy=o.redundancy,
                    sigma_vm_pu=o.sigma_vm_pu,
                    sigma_power_mw=o.sigma_power_mw,
                ),
                seed=o.seed,
            )
            self.select = np.flatnonzero(np.isin(full.id, chosen.id))
        self.kind = full.kind[self.select]
        self.element_num = full.element[self.select]
        self.truth = np.asarray(full.true_value)[self.select]
        is_bus = np.isin(self.kind, _BUS_KINDS)
        self.element = [
            f"{'bus' if b else 'branch'}:{int(e)}"
            for b, e in zip(is_bus.tolist(), self.element_num.tolist(), strict=True)
        ]
        self.meter = [
            f"{o.site}.{_SHORT[str(k)]}.{'b' if b else 'l'}{int(e)}"
            for k, b, e in zip(
                self.kind.tolist(), is_bus.tolist(), self.element_num.tolist(), strict=True
            )
        ]
        self.sigma = np.where(self.kind == "vm", o.sigma_vm_pu, o.sigma_power_mw)
        self.run = o.run or uuid.uuid4().hex[:12]
        self.start = o.start or datetime.now(UTC)
        self._rng = np.random.default_rng([o.seed, 7])
        self._health = [(a, self._unit_rows(u)) for a, u in o.assets]
        self.dropped = 0  # readings missing from the scans drawn so far

    @staticmethod
    def _unit_rows(unit: int) -> Any:
        from importlib.resources import as_file, files

        from aiguilleur.health.cmapss import read_cmapss

        ref = files("aiguilleur.data").joinpath("cmapss", "test_FD001_units1-10.txt")
        with as_file(ref) as p:
            tel = read_cmapss(p)
        rows = np.flatnonzero(tel.unit == unit)
        if rows.size == 0:
            raise ValidationError(
                f"assets: no unit {unit} in the bundled C-MAPSS test file (units 1 to 10)"
            )
        return tel, rows

    @property
    def metered(self) -> int:
        """Readings in the metered set."""
        return int(self.kind.size)

    def scan_time(self, k: int) -> datetime:
        step = 1.0 / self.options.rate_hz if self.options.rate_hz > 0 else 1.0
        return self.start + timedelta(seconds=k * step)

    def scan(self, k: int) -> list[SimulatedMessage]:
        """The messages of scan ``k`` (0-based): readings, then one cycle per asset."""
        from aiguilleur.grid.measurements import simulate_measurements

        o = self.options
        noisy = simulate_measurements(
            self.net, self.pf, self._sim, seed=(o.seed + 1) * 1_000_003 + k
        )
        value = np.array(noisy.value)[self.select]
        keep = self._rng.random(value.size) >= o.dropout
        gross = keep & (self._rng.random(value.size) < o.gross_error_rate)
        sign = self._rng.choice(np.array([-1.0, 1.0]), size=value.size)
        value = np.where(gross, value + sign * o.gross_error_sigma * self.sigma, value)
        when = self.scan_time(k).isoformat()
        rows = np.flatnonzero(keep)
        self.dropped += int(value.size - rows.size)
        out: list[SimulatedMessage] = []
        for part, lo in enumerate(range(0, rows.size, o.readings_per_message)):
            chunk = rows[lo : lo + o.readings_per_message].tolist()
            readings = [
                {
                    "element": self.element[i],
                    "quantity": str(self.kind[i]),
                    "value": float(value[i]),
                    "unit": _UNIT[str(self.kind[i])],
                    "sigma": float(self.sigma[i]),
                    "meter": self.meter[i],
                }
                for i in chunk
            ]
            errs = tuple(
                {
                    "scan": k,
                    "meter": self.meter[i],
                    "element": self.element[i],
                    "quantity": str(self.kind[i]),
                    "error": float(value[i] - self.truth[i]),
                }
                for i in chunk
                if gross[i]
            )
            mid = f"{self.run}-{k:07d}-{part:03d}"
            out.append(
                SimulatedMessage(
                    "telemetry",
                    mid,
                    k,
                    {"id": mid, "occurred_at": when, "readings": readings},
                    errs,
                )
            )
        for asset, (tel, arows) in self._health:
            if k >= arows.size:
                continue  # the unit's record ends: the asset has failed or is out of data
            r = int(arows[k])
            mid = f"{self.run}-h-{asset}-{int(tel.cycle[r])}"
            out.append(
                SimulatedMessage(
                    "health",
                    mid,
                    k,
                    {
                        "id": mid,
                        "occurred_at": when,
                        "asset": asset,
                        "cycle": int(tel.cycle[r]),
                        "settings": [float(x) for x in tel.settings[r]],
                        "sensors": {
                            s: float(v)
                            for s, v in zip(tel.sensor_names, tel.sensors[r], strict=True)
                            if math.isfinite(float(v))
                        },
                    },
                )
            )
        return out

    def scans(self) -> Iterator[list[SimulatedMessage]]:
        for k in range(self.options.count):
            yield self.scan(k)


# -- publishing -----------------------------------------------------------------------------


def publish_messages(
    scans: Iterator[Sequence[SimulatedMessage]] | Sequence[Sequence[SimulatedMessage]],
    broker: Literal["mqtt", "nats"],
    *,
    url: str | None = None,
    site: str = "site1",
    prefix: str = "aiguilleur",
    rate_hz: float = 0.0,
    stream: str = DEFAULT_NATS_STREAM,
    report: SimulationReport | None = None,
) -> SimulationReport:
    """Publish scans of messages, each confirmed by the broker, paced at ``rate_hz`` scans/s.

    MQTT: QoS 1 to ``<prefix>/<site>/<kind>``. NATS: JetStream
    ``<prefix>.<site>.<kind>`` with ``Nats-Msg-Id``; the stream is created over
    ``<prefix>.>`` when missing.
    """
    rep = report or SimulationReport(broker=broker, site=site)
    if broker == "mqtt":
        _publish_mqtt(scans, url, site, prefix, rate_hz, rep)
    elif broker == "nats":
        import asyncio

        asyncio.run(_publish_nats(scans, url, site, prefix, rate_hz, stream, rep))
    else:
        raise ValidationError(f"broker: expected mqtt or nats, got {broker!r}")
    return rep


def _account(rep: SimulationReport, msgs: Sequence[SimulatedMessage]) -> None:
    rep.scans += 1
    for m in msgs:
        rep.messages += 1
        rep.message_ids.append(m.id)
        if m.kind == "telemetry":
            rep.readings += len(m.payload["readings"])
            rep.gross_errors.extend(m.gross_errors)
        else:
            rep.health_messages += 1


def _pace(t0: float, k: int, rate_hz: float) -> None:
    if rate_hz > 0:
        wait = t0 + k / rate_hz - time.perf_counter()
        if wait > 0:
            time.sleep(wait)


def _publish_mqtt(
    scans: Any, url: str | None, site: str, prefix: str, rate_hz: float, rep: SimulationReport
) -> None:
    try:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
    except ImportError:  # pragma: no cover - depends on the environment
        raise AiguilleurError("MQTT needs paho-mqtt: pip install 'aiguilleur[brokers]'") from None
    host, port = broker_address(url, "mqtt")
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"aiguilleur-sim-{uuid.uuid4().hex[:10]}",
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    client.max_queued_messages_set(0)
    try:
        client.connect(host, port, keepalive=30)
    except OSError as e:
        raise AiguilleurError(f"MQTT broker {host}:{port}: {e}") from None
    client.loop_start()
    t0 = time.perf_counter()
    try:
        for k, msgs in enumerate(scans):
            _pace(t0, k, rate_hz)
            infos = [client.publish(f"{prefix}/{site}/{m.kind}", m.body(), qos=1) for m in msgs]
            for info in infos:
                info.wait_for_publish(timeout=30.0)
                if not info.is_published():
                    raise AiguilleurError(
                        f"MQTT broker {host}:{port}: a publication was not confirmed within 30 s"
                    )
            _account(rep, msgs)
    finally:
        client.disconnect()
        client.loop_stop()
        rep.wall_s = time.perf_counter() - t0


async def _publish_nats(
    scans: Any,
    url: str | None,
    site: str,
    prefix: str,
    rate_hz: float,
    stream: str,
    rep: SimulationReport,
) -> None:
    import asyncio

    try:
        import nats
        import nats.errors
    except ImportError:  # pragma: no cover - depends on the environment
        raise AiguilleurError("NATS needs nats-py: pip install 'aiguilleur[brokers]'") from None
    host, port = broker_address(url, "nats")
    # the client retries an unreachable server for two minutes before it gives up
    why = broker_unreachable(url, "nats", timeout_s=5.0)
    if why is not None:
        raise AiguilleurError(why)
    try:
        nc = await nats.connect(
            f"nats://{host}:{port}",
            connect_timeout=5,
            max_reconnect_attempts=3,
            error_cb=_nats_error,
        )
    except (TimeoutError, OSError, nats.errors.Error) as e:
        raise AiguilleurError(f"NATS server {host}:{port}: {type(e).__name__} {e}") from None
    t0 = time.perf_counter()
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream, f"{prefix}.>")
        for k, msgs in enumerate(scans):
            if rate_hz > 0:
                wait = t0 + k / rate_hz - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            await asyncio.gather(
                *(
                    js.publish(
                        f"{prefix}.{site}.{m.kind}",
                        m.body(),
                        headers={"Nats-Msg-Id": m.id},
                        timeout=30.0,
                    )
                    for m in msgs
                )
            )
            _account(rep, msgs)
    except nats.errors.Error as e:
        raise AiguilleurError(f"NATS server {host}:{port}: {type(e).__name__} {e}") from None
    finally:
        await nc.close()
        rep.wall_s = time.perf_counter() - t0
