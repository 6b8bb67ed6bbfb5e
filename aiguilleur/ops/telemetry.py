"""Telemetry from message brokers into the operations centre: MQTT and NATS JetStream.

A SCADA gateway (or :mod:`aiguilleur.ops.telemetry_sim`) publishes readings
and condition-monitoring cycles as JSON messages; a subscriber turns each
message into one event (``telemetry`` or ``health_reading``), commits it
through :meth:`OpsCentre.ingest <aiguilleur.ops.centre.OpsCentre.ingest>`
and only then acknowledges it to the broker.

Topic layout
------------
The last two levels of a topic (MQTT) or subject (NATS) name the site and
the kind of message; what comes before is a free prefix:

=========  =====================================  ======================================
broker     address                                kind
=========  =====================================  ======================================
MQTT       ``aiguilleur/<site>/telemetry``        readings of a site's meters
MQTT       ``aiguilleur/<site>/health``           one cycle of an asset's monitoring
NATS       ``aiguilleur.<site>.telemetry``        idem (JetStream stream ``AIGUILLEUR``)
NATS       ``aiguilleur.<site>.health``           idem
=========  =====================================  ======================================

``<site>`` is 1 to 64 letters, digits or ``-``. MQTT subscribers
listen to ``aiguilleur/+/+`` by default; NATS subscribers bind a durable
pull consumer to the stream ``AIGUILLEUR`` over ``aiguilleur.>`` (the stream
is created when missing).

Payload
-------
One UTF-8 JSON object (at most :data:`MAX_MESSAGE_BYTES`)::

    {"id": "scan-000123-0", "occurred_at": "2026-01-15T05:00:00.250+00:00",
     "readings": [{"element": "branch:12", "quantity": "p_from", "value": 81.2,
                   "unit": "MW", "sigma": 1.0, "meter": "S1-PF-0012"}, ...]}

    {"id": "h-GT1-0042", "occurred_at": "...", "asset": "GT-1", "cycle": 42,
     "settings": [0.0023, 0.0003, 100.0], "sensors": {"s2": 643.02, ...}}

with ``source`` optional (default ``mqtt:<site>`` or ``nats:<site>``) and
``type``, if present, equal to the kind of the topic. Readings are those of
the ``telemetry`` event (:class:`aiguilleur.ops.events.Reading`).

Delivery
--------
Brokers deliver at least once; the effect is exactly once because the event
id is derived from the message: ``<site>/<id>``. A redelivered message (the
subscriber died after the commit and before the acknowledgement) is
acknowledged again and stored once. MQTT subscribers use QoS 1, a
persistent session (``clean_session=False``, a fixed client id) and manual
acknowledgements; NATS subscribers a durable consumer with explicit
acknowledgement. Publishers should also set ``Nats-Msg-Id`` to the message
id (JetStream then drops duplicates on its side).

What a broker keeps for a subscriber that is down is the broker's to bound: Mosquitto
queues at most ``max_queued_messages`` (1000 by default) QoS 1 messages per offline
session and drops the rest; a JetStream stream keeps what its limits allow. Size those
limits for the longest outage the subscriber must survive.

A message that cannot become a valid event (not JSON, a field missing, a
unit that does not match, an element the grid does not have) is written to
the store's dead-letter table with the reason, then acknowledged: it is
never redelivered and never stops the subscriber. (A dead letter written
just before a crash may be written again when the message is redelivered:
dead letters are at least once.) A store that fails is another matter: the
batch is not acknowledged, and the subscriber stops with the error, so that
the broker keeps the messages for its restart.

Backpressure
------------
Every message is stored; what is analysed is coalesced. A responder thread
analyses what was committed while it was busy as one batch against the
newest state, where each measured quantity holds its newest reading
(:class:`aiguilleur.ops.state.TelemetryState`): when analyses lag, the
newest reading per measured element wins. The lag (from the commit of the
oldest event of a batch to the end of its analysis) is reported in
:class:`SubscriberStats`, and a ``telemetry_lag`` alarm is stored when it
exceeds ``lag_alarm_s`` (once, until it falls below half of it).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from aiguilleur.errors import AiguilleurError, ValidationError

if TYPE_CHECKING:
    from aiguilleur.ops.centre import OpsCentre

__all__ = [
    "DEFAULT_MQTT_TOPIC",
    "DEFAULT_NATS_STREAM",
    "DEFAULT_NATS_SUBJECT",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_KINDS",
    "Intake",
    "SubscriberOptions",
    "SubscriberStats",
    "broker_address",
    "broker_unreachable",
    "ensure_stream",
    "message_to_event",
    "mqtt_subscribe",
    "nats_subscribe",
]

#: the largest payload accepted (NATS's default maximum is 1 MiB; MQTT allows 256 MiB)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MESSAGE_KINDS = ("telemetry", "health")
DEFAULT_MQTT_TOPIC = "aiguilleur/+/+"
DEFAULT_NATS_SUBJECT = "aiguilleur.>"
DEFAULT_NATS_STREAM = "AIGUILLEUR"
_DEFAULT_PORT = {"mqtt": 1883, "nats": 4222}
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_MSG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+#-]{0,127}$")
_FIELDS = {
    "telemetry": frozenset({"id", "occurred_at", "source", "type", "readings"}),
    "health": frozenset(
        {"id", "occurred_at", "source", "type", "asset", "cycle", "settings", "sensors"}
    ),
}
_EVENT_TYPE = {"telemetry": "telemetry", "health": "health_reading"}
Transport = Literal["mqtt", "nats"]


# -- messages -> events ------------------------------------------------------------------------


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a number JSON allows")


def _address(address: str, transport: Transport) -> tuple[str, str]:
    """``(site, kind)`` of a topic or subject; ValidationError naming what is wrong."""
    sep = "/" if transport == "mqtt" else "."
    parts = address.split(sep)
    if len(parts) < 2:
        raise ValidationError(f"address {address[:200]!r}: expected <prefix>{sep}<site>{sep}<kind>")
    site, kind = parts[-2], parts[-1]
    if kind not in MESSAGE_KINDS:
        raise ValidationError(
            f"address {address[:200]!r}: unknown kind {kind[:40]!r} (expected telemetry or health)"
        )
    if not _SITE.match(site):
        raise ValidationError(
            f"address {address[:200]!r}: site {site[:70]!r} must be 1 to 64 letters, digits or -"
        )
    return site, kind


def _document(address: str, payload: bytes | str, transport: Transport) -> dict[str, Any]:
    """The event document of a message (not yet validated as an event)."""
    site, kind = _address(address, transport)
    raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ValidationError(f"payload: larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValidationError(f"payload: not UTF-8 text (byte {e.start})") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ValidationError(f"payload: not valid JSON ({e.msg} at column {e.colno})") from None
    except ValueError as e:
        raise ValidationError(f"payload: {e}") from None
    except RecursionError:
        raise ValidationError("payload: JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise ValidationError(f"payload: expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(str(k)[:40] for k in obj if k not in _FIELDS[kind])
    if unknown:
        raise ValidationError(f"payload.{unknown[0]}: unknown field in a {kind} message")
    mid = obj.get("id")
    if not isinstance(mid, str) or not _MSG_ID.match(mid):
        raise ValidationError(
            "payload.id: expected the message id (letters, digits and ._:@/+#-, "
            "at most 128 characters, starting with a letter or digit)"
        )
    event_id = f"{site}/{mid}"
    if len(event_id) > 128:
        raise ValidationError(f"payload.id: {site}/<id> is longer than 128 characters")
    t = obj.get("type")
    if t is not None and t != _EVENT_TYPE[kind]:
        raise ValidationError(
            f"payload.type: {str(t)[:40]!r} does not match the topic's kind {kind!r}"
        )
    doc = {k: v for k, v in obj.items() if k != "id"}
    doc["id"] = event_id
    doc["type"] = _EVENT_TYPE[kind]
    doc.setdefault("source", f"{transport}:{site}")
    return doc


def message_to_event(address: str, payload: bytes | str, transport: Transport = "mqtt") -> Any:
    """The event a message carries (see the module docstring for the layout).

    Parameters
    ----------
    address
        The MQTT topic or NATS subject it arrived on.
    payload
        Its body.
    transport
        ``mqtt`` (levels separated by ``/``) or ``nats`` (by ``.``).

    Returns
    -------
    A validated ``telemetry`` or ``health_reading`` event model (its grid
    elements are checked against the world when it is ingested).

    Raises
    ------
    ValidationError
        Naming the field and what was expected.
    """
    from aiguilleur.ops.events import parse_event

    return parse_event(_document(address, payload, transport))


# -- the transport-independent half ------------------------------------------------------------


@dataclass
class SubscriberStats:
    """What a subscriber did (counts since it started, times in seconds).

    ``commit_latency_s`` holds, per committed message (the last 100,000),
    the time from its arrival at the subscriber to the commit of its event
    (the acknowledgement follows at once); ``lag_s`` and ``lag_max_s`` the lag
    of the analyses (module docstring); ``coalesced`` the events analysed
    together with a newer one (the analysis answered them as one batch).
    """

    transport: str = ""
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    acked: int = 0
    batches: int = 0
    analyses: int = 0
    coalesced: int = 0
    lag_s: float = 0.0
    lag_max_s: float = 0.0
    lag_alarms: int = 0
    errors: list[str] = field(default_factory=list)
    commit_latency_s: deque[float] = field(
        default_factory=lambda: deque(maxlen=100_000), repr=False
    )
    wall_s: float = 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the commit latency (NaN when nothing committed)."""
        xs = sorted(self.commit_latency_s)
        if not xs:
            return math.nan
        k = min(len(xs) - 1, max(0, math.ceil(q / 100.0 * len(xs)) - 1))
        return xs[k]

    def to_dict(self) -> dict[str, Any]:
        p50, p99 = self.percentile(50), self.percentile(99)
        return {
            "transport": self.transport,
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dead_letters": self.dead_letters,
            "acknowledged": self.acked,
            "batches": self.batches,
            "analyses": self.analyses,
            "coalesced_events": self.coalesced,
            "lag_s": self.lag_s,
            "lag_max_s": self.lag_max_s,
            "lag_alarms": self.lag_alarms,
            "commit_latency_p50_s": None if math.isnan(p50) else p50,
            "commit_latency_p99_s": None if math.isnan(p99) else p99,
            "errors": list(self.errors[-20:]),
            "wall_s": self.wall_s,
        }


@dataclass(frozen=True)
class SubscriberOptions:
    """Settings of :func:`mqtt_subscribe` and :func:`nats_subscribe`.

    Parameters
    ----------
    url
        The broker: ``host:port``, ``mqtt://host:port`` or ``nats://host:port``
        (default 127.0.0.1 and the transport's port).
    topic
        MQTT topic filter or NATS subject filter (default
        :data:`DEFAULT_MQTT_TOPIC`, :data:`DEFAULT_NATS_SUBJECT`).
    client_id
        MQTT client id of the persistent session, or the NATS durable
        consumer's name. Restart with the same one to receive what was not
        acknowledged.
    stream
        The JetStream stream (NATS only; created over ``topic`` if missing).
    ack_wait_s
        NATS: a message not acknowledged within this is redelivered.
    batch_max
        Most messages committed in one transaction.
    respond
        Run the responder (analyses, proposals, alarms) on what is committed.
    lag_alarm_s
        Store a ``telemetry_lag`` alarm when the analyses lag more than this.
    max_messages
        Stop after this many messages (``None``: run until stopped).
    idle_exit_s
        Stop when nothing has arrived for this long (``None``: never).
    """

    url: str | None = None
    topic: str | None = None
    client_id: str = "aiguilleur-ops"
    stream: str = DEFAULT_NATS_STREAM
    ack_wait_s: float = 30.0
    batch_max: int = 500
    respond: bool = True
    lag_alarm_s: float = 5.0
    max_messages: int | None = None
    idle_exit_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("ack_wait_s", "lag_alarm_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < math.inf:
                raise ValidationError(f"{name}: expected a positive number, got {v!r}")
        v = self.idle_exit_s
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < math.inf
        ):
            raise ValidationError(f"idle_exit_s: expected a positive number or None, got {v!r}")
        b = self.batch_max
        if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 100_000:
            raise ValidationError(f"batch_max: expected an integer in 1..100000, got {b!r}")
        m = self.max_messages
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise ValidationError(f"max_messages: expected a positive integer, got {m!r}")
        if not self.client_id or not re.match(r"^[A-Za-z0-9_-]{1,64}$", self.client_id):
            raise ValidationError(
                f"client_id: expected 1 to 64 letters, digits, _ or -, got {self.client_id!r}"
            )
        if not re.match(r"^[A-Za-z0-9_-]{1,64}$", self.stream):
            raise ValidationError(
                f"stream: expected 1 to 64 letters, digits, _ or -, got {self.stream!r}"
            )
        if self.topic is not None and not 0 < len(self.topic) <= 256:
            raise ValidationError("topic: expected 1 to 256 characters")


_SCHEMES = {"mqtt": ("mqtt", "tcp"), "nats": ("nats", "tcp")}


def broker_address(url: str | None, transport: Transport) -> tuple[str, int]:
    """``(host, port)`` of a broker URL: ``host:port`` or ``scheme://host:port`` (127.0.0.1).

    A scheme of another transport, or a URL without a host, is refused (it would
    otherwise fall back to the local broker in silence).
    """
    port = _DEFAULT_PORT[transport]
    if not url:
        return "127.0.0.1", port
    text = url if "://" in url else f"{transport}://{url}"
    try:
        parts = urlsplit(text)
        host = parts.hostname
        got = parts.port
    except ValueError as e:
        raise ValidationError(f"url {url[:100]!r}: {e}") from None
    if parts.scheme not in _SCHEMES[transport]:
        raise ValidationError(
            f"url {url[:100]!r}: expected {transport}://host:port (or host:port), "
            f"not a {parts.scheme[:20]!r} URL"
        )
    if not host:
        raise ValidationError(f"url {url[:100]!r}: no host (expected {transport}://host:port)")
    return host, got if got is not None else port


async def _nats_error(e: Exception) -> None:
    """NATS client errors: logged (the client would print a traceback per attempt); a
    connection that fails is reported once by the caller."""
    import logging

    logging.getLogger(__name__).debug("nats: %s: %s", type(e).__name__, e)


def broker_unreachable(url: str | None, transport: Transport, timeout_s: float = 0.5) -> str | None:
    """Why the broker cannot be reached over TCP (``None`` when it accepts a connection)."""
    host, port = broker_address(url, transport)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as e:
        return f"no {transport.upper()} broker at {host}:{port} ({e.__class__.__name__})"


@dataclass
class _Outcome:
    ok: bool  # stored or duplicate: ackable; dead letters are ackable too
    seq: int | None = None
    reason: str | None = None


class Intake:
    """Decode messages, commit their events in one transaction, dead-letter the rest.

    The transport-independent half of a subscriber. :meth:`process` returns
    once everything it was given is either committed or dead-lettered, so
    that each message may then be acknowledged; it raises only when the
    store fails (then nothing of the batch may be acknowledged).
    """

    def __init__(self, centre: OpsCentre, transport: Transport, stats: SubscriberStats) -> None:
        self.centre = centre
        self.transport: Transport = transport
        self.stats = stats
        self._committed: dict[int, float] = {}
        self._lock = threading.Lock()
        self.track = True

    def process(self, batch: Sequence[tuple[str, bytes, float]]) -> list[_Outcome]:
        """``(address, payload, arrival time by time.perf_counter())`` -> one outcome each."""
        out: list[_Outcome | None] = [None] * len(batch)
        docs: list[dict[str, Any]] = []
        where: list[int] = []
        for k, (address, payload, _t) in enumerate(batch):
            try:
                docs.append(_document(address, payload, self.transport))
                where.append(k)
            except ValidationError as e:
                out[k] = _Outcome(True, reason=str(e))
            except Exception as e:  # a subscriber never dies on a message
                out[k] = _Outcome(True, reason=f"payload: {type(e).__name__}: {str(e)[:200]}")
        if docs:
            results = self.centre.ingest(docs)
            now = time.perf_counter()
            for k, r in zip(where, results, strict=True):
                if r.ok:
                    out[k] = _Outcome(True, seq=r.seq)
                    self.stats.commit_latency_s.append(now - batch[k][2])
                    if r.duplicate:
                        self.stats.duplicates += 1
                    else:
                        self.stats.stored += 1
                        if self.track and r.seq is not None:
                            with self._lock:
                                self._committed[r.seq] = now
                else:
                    out[k] = _Outcome(True, reason=r.error or "refused")
        for k, o in enumerate(out):
            assert o is not None
            if o.reason is not None:
                address, payload, _t = batch[k]
                self.centre.store.dead_letter(
                    f"{self.transport}:{address[:150]}", o.reason, payload
                )
                self.stats.dead_letters += 1
        self.stats.received += len(batch)
        self.stats.batches += 1
        return [o for o in out if o is not None]

    def committed_at(self, seqs: Sequence[int]) -> float | None:
        """When the earliest of ``seqs`` was committed here (forgetting them), if known."""
        with self._lock:
            ts = [self._committed.pop(s) for s in seqs if s in self._committed]
        return min(ts) if ts else None


class _Analyst:
    """Runs the responder on what was committed; measures the lag and raises lag alarms."""

    def __init__(self, intake: Intake, options: SubscriberOptions) -> None:
        self.intake = intake
        self.options = options
        self._stop = threading.Event()
        self._alarmed = False
        self._thread = threading.Thread(target=self._run, name="aiguilleur-analyst", daemon=True)

    def start(self) -> _Analyst:
        self._thread.start()
        return self

    def _run(self) -> None:
        centre = self.intake.centre
        stats = self.intake.stats
        while not self._stop.is_set():
            if not centre.pending():
                time.sleep(0.01)
                continue
            try:
                reactions = centre.respond()
            except Exception as e:  # analyses fail loudly in the stats, never silently
                stats.errors.append(f"responder: {type(e).__name__}: {str(e)[:200]}")
                time.sleep(0.1)
                continue
            now = time.perf_counter()
            for r in reactions:
                stats.analyses += 1
                stats.coalesced += max(0, len(r.answered) - 1)
                t = self.intake.committed_at(r.answered)
                if t is None:
                    continue
                lag = now - t
                stats.lag_s = lag
                stats.lag_max_s = max(stats.lag_max_s, lag)
                self._lag_alarm(lag, r.seq, len(r.answered))

    def _lag_alarm(self, lag: float, seq: int, n: int) -> None:
        limit = self.options.lag_alarm_s
        if lag <= limit / 2:
            self._alarmed = False
            return
        if lag <= limit or self._alarmed:
            return
        self._alarmed = True
        centre = self.intake.centre
        alarm = {
            "id": f"LAG{seq}",
            "seq": seq,
            "kind": "telemetry_lag",
            "severity": "alarm",
            "text": (
                f"analyses lag the telemetry by {lag:.1f} s (above {limit:g} s): {n} events "
                "were analysed together, newest reading per measured element"
            ),
            "element": None,
            "time_to_act_s": 0.0,
            "raised_at": centre.state().clock,
            "raised_after_s": lag,
            "reaction_s": lag,
            "lag_s": lag,
        }
        try:
            centre.store.put_record("alarms", f"LAG{seq}", seq, alarm)
            self.intake.stats.lag_alarms += 1
        except AiguilleurError as e:
            self.intake.stats.errors.append(f"lag alarm: {e}")

    def stop(self) -> None:
        # let the responder catch up with what was committed, then stop
        end = time.monotonic() + 60.0
        while self.intake.centre.pending() and time.monotonic() < end and self._thread.is_alive():
            time.sleep(0.01)
        self._stop.set()
        self._thread.join()


class _Runner:
    """What both subscribers share: stop conditions, the intake, the analyst."""

    def __init__(
        self,
        centre: OpsCentre,
        options: SubscriberOptions,
        transport: Transport,
        stop: threading.Event | None,
    ) -> None:
        self.options = options
        self.stats = SubscriberStats(transport=transport)
        self.intake = Intake(centre, transport, self.stats)
        self.intake.track = options.respond
        centre.tracking = options.respond
        self.stop = stop if stop is not None else threading.Event()
        self.analyst = _Analyst(self.intake, options).start() if options.respond else None
        self.t0 = time.perf_counter()
        self.last_arrival = time.monotonic()

    def done(self) -> bool:
        o = self.options
        if self.stop.is_set():
            return True
        if o.max_messages is not None and self.stats.received >= o.max_messages:
            return True
        return o.idle_exit_s is not None and time.monotonic() - self.last_arrival > o.idle_exit_s

    def room(self) -> int:
        m = self.options.max_messages
        left = self.options.batch_max if m is None else m - self.stats.received
        return max(1, min(self.options.batch_max, left))

    def finish(self) -> SubscriberStats:
        if self.analyst is not None:
            self.analyst.stop()
        self.stats.wall_s = time.perf_counter() - self.t0
        return self.stats


# -- MQTT ----------------------------------------------------------------------------------------


def mqtt_subscribe(
    centre: OpsCentre,
    options: SubscriberOptions | None = None,
    *,
    stop: threading.Event | None = None,
    on_ready: Callable[[], None] | None = None,
) -> SubscriberStats:
    """Subscribe to an MQTT broker and ingest what arrives, until stopped (module docstring).

    QoS 1, a persistent session under ``options.client_id`` and manual
    acknowledgements: a message is acknowledged after its event is committed
    (or dead-lettered). Messages taken from the broker but not yet committed
    when the process dies are redelivered to the next session of the same
    client id. Returns the statistics when ``stop`` is set, ``max_messages``
    are handled or ``idle_exit_s`` passes.

    Raises
    ------
    AiguilleurError
        When the broker cannot be reached or refuses the session, or the store fails.
    """
    import queue

    try:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
    except ImportError:  # pragma: no cover - depends on the environment
        raise AiguilleurError("MQTT needs paho-mqtt: pip install 'aiguilleur[brokers]'") from None

    opts = options or SubscriberOptions()
    host, port = broker_address(opts.url, "mqtt")
    topic = opts.topic or DEFAULT_MQTT_TOPIC
    run = _Runner(centre, opts, "mqtt", stop)
    inbox: queue.Queue[tuple[str, bytes, int, int, float, int]] = queue.Queue()
    ready = threading.Event()
    failed: list[str] = []
    gen_lock = threading.Lock()
    generation = [0]

    def on_connect(client: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            failed.append(f"the broker refused the session: {reason}")
            return
        with gen_lock:
            generation[0] += 1  # acknowledgements of an earlier connection are void
        client.subscribe(topic, qos=1)

    def on_subscribe(_c: Any, _u: Any, _mid: Any, reasons: Any, _props: Any) -> None:
        if any(r.is_failure for r in reasons):
            failed.append(f"the broker refused the subscription to {topic!r}")
        ready.set()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        inbox.put(
            (
                msg.topic,
                bytes(msg.payload),
                int(msg.mid),
                int(msg.qos),
                time.perf_counter(),
                generation[0],
            )
        )

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=opts.client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
        manual_ack=True,
    )
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=30)
    except OSError as e:
        run.finish()
        raise AiguilleurError(f"MQTT broker {host}:{port}: {e}") from None
    client.loop_start()
    try:
        end = time.monotonic() + 10.0
        while not ready.is_set() and not failed and time.monotonic() < end:
            time.sleep(0.01)
        if failed or not ready.is_set():
            raise AiguilleurError(
                f"MQTT broker {host}:{port}: "
                + (failed[0] if failed else "no subscription acknowledgement within 10 s")
            )
        if on_ready is not None:
            on_ready()
        run.last_arrival = time.monotonic()
        while not run.done():
            try:
                first = inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            run.last_arrival = time.monotonic()
            items = [first]
            room = run.room()
            while len(items) < room:
                try:
                    items.append(inbox.get_nowait())
                except queue.Empty:
                    break
            run.intake.process([(t, p, at) for t, p, _m, _q, at, _g in items])
            with gen_lock:
                for _t, _p, mid, qos, _at, gen in items:
                    if qos > 0 and gen == generation[0]:
                        client.ack(mid, qos)
                        run.stats.acked += 1
                    elif qos == 0:
                        run.stats.acked += 1
    finally:
        client.disconnect()
        client.loop_stop()
        run.finish()
    return run.stats


# -- NATS JetStream ------------------------------------------------------------------------------


async def ensure_stream(js: Any, stream: str, subject: str) -> None:
    """Create the JetStream stream over ``subject`` unless it exists."""
    import nats.js.errors

    try:
        await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        await js.add_stream(name=stream, subjects=[subject])


def nats_subscribe(
    centre: OpsCentre,
    options: SubscriberOptions | None = None,
    *,
    stop: threading.Event | None = None,
    on_ready: Callable[[], None] | None = None,
) -> SubscriberStats:
    """Consume a NATS JetStream stream and ingest what arrives, until stopped (module docstring).

    A durable pull consumer (``options.client_id``) with explicit
    acknowledgement: each message is acknowledged after its event is
    committed (or dead-lettered). What was fetched and not acknowledged when
    the process died is redelivered after ``ack_wait_s``.

    Raises
    ------
    AiguilleurError
        When the server cannot be reached, or the store fails.
    """
    import asyncio

    try:
        import nats  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        raise AiguilleurError("NATS needs nats-py: pip install 'aiguilleur[brokers]'") from None

    opts = options or SubscriberOptions()
    run = _Runner(centre, opts, "nats", stop)
    try:
        asyncio.run(_nats_loop(run, opts, on_ready))
    finally:
        run.finish()
    return run.stats


async def _nats_loop(
    run: _Runner, opts: SubscriberOptions, on_ready: Callable[[], None] | None
) -> None:
    import asyncio

    import nats
    import nats.errors
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    host, port = broker_address(opts.url, "nats")
    subject = opts.topic or DEFAULT_NATS_SUBJECT
    try:
        nc = await nats.connect(
            f"nats://{host}:{port}",
            connect_timeout=5,
            max_reconnect_attempts=10,
            allow_reconnect=True,
            error_cb=_nats_error,
        )
    except (TimeoutError, OSError, nats.errors.Error) as e:
        raise AiguilleurError(f"NATS server {host}:{port}: {type(e).__name__} {e}") from None
    try:
        js = nc.jetstream()
        await ensure_stream(js, opts.stream, subject)
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=opts.ack_wait_s,
            max_ack_pending=max(1000, 4 * opts.batch_max),
            max_deliver=-1,
        )
        sub = await js.pull_subscribe(
            subject, durable=opts.client_id, stream=opts.stream, config=config
        )
        if on_ready is not None:
            on_ready()
        run.last_arrival = time.monotonic()
        while not run.done():
            # wait for one message (a request for a full batch would be held by the server
            # until the batch fills or the request expires), then take what else is there
            try:
                msgs = await sub.fetch(1, timeout=0.25)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            room = run.room() - len(msgs)
            if room > 0:
                with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                    msgs += await sub.fetch(room, timeout=0.01)
            run.last_arrival = time.monotonic()
            now = time.perf_counter()
            await asyncio.to_thread(
                run.intake.process, [(m.subject, bytes(m.data), now) for m in msgs]
            )
            for m in msgs:
                await m.ack()
            await nc.flush()
            run.stats.acked += len(msgs)
    except nats.errors.Error as e:
        raise AiguilleurError(f"NATS server {host}:{port}: {type(e).__name__} {e}") from None
    finally:
        await nc.close()
