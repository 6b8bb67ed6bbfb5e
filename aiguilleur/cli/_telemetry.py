"""``aiguilleur ops subscribe`` and ``ops simulate-telemetry``: telemetry from brokers."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from aiguilleur.cli._common import JsonOpt, _fmt, _guard, _print_json, _stderr, _stdout

__all__ = ["register"]

EXIT_INCOMPLETE = 1

StoreOpt = Annotated[
    str,
    typer.Option(
        "--store",
        metavar="URL",
        help="sqlite:///path.db (or a path), postgresql+psycopg://user@host/db.",
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="HOST:PORT",
        help="The broker (default 127.0.0.1:1883 for MQTT, 127.0.0.1:4222 for NATS).",
    ),
]


def register(ops_app: typer.Typer) -> None:
    """Add ``subscribe`` and ``simulate-telemetry`` to the ``ops`` command group."""
    ops_app.command("subscribe")(subscribe)
    ops_app.command("simulate-telemetry")(simulate_telemetry)


def _broker(name: str) -> Any:
    from aiguilleur.errors import ValidationError

    if name not in ("mqtt", "nats"):
        raise ValidationError(f"broker: expected mqtt or nats, got {name!r}")
    return name


@_guard
def subscribe(
    broker: Annotated[str, typer.Argument(metavar="mqtt|nats", help="The broker's protocol.")],
    store: StoreOpt = "aiguilleur-ops.db",
    url: UrlOpt = None,
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic",
            "--subject",
            help="MQTT topic filter (aiguilleur/+/+) or NATS subject filter (aiguilleur.>).",
        ),
    ] = None,
    client_id: Annotated[
        str,
        typer.Option(
            "--client-id",
            "--durable",
            help="MQTT persistent session's client id, or the NATS durable consumer's name.",
        ),
    ] = "aiguilleur-ops",
    stream: Annotated[str, typer.Option("--stream", help="NATS JetStream stream.")] = "AIGUILLEUR",
    ack_wait: Annotated[
        float, typer.Option("--ack-wait", help="NATS: redeliver what is unacknowledged after S s.")
    ] = 30.0,
    respond: Annotated[
        bool, typer.Option("--respond/--no-respond", help="Run the responder on what arrives.")
    ] = True,
    lag_alarm: Annotated[
        float, typer.Option("--lag-alarm", help="Alarm when analyses lag more than S s.")
    ] = 5.0,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", min=1, help="Stop after N messages.")
    ] = None,
    idle_exit: Annotated[
        float | None, typer.Option("--idle-exit", help="Stop after S s with nothing received.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest telemetry and health messages from MQTT or NATS JetStream until stopped.

    Each message becomes one event, acknowledged after its commit; malformed
    ones go to the store's dead letters. SIGTERM or Ctrl-C stops after the
    batch in hand.
    """
    from aiguilleur.ops.centre import CentreOptions, OpsCentre
    from aiguilleur.ops.store import open_store
    from aiguilleur.ops.telemetry import (
        SubscriberOptions,
        broker_address,
        mqtt_subscribe,
        nats_subscribe,
    )

    kind = _broker(broker)
    opts = SubscriberOptions(
        url=url,
        topic=topic,
        client_id=client_id,
        stream=stream,
        ack_wait_s=ack_wait,
        respond=respond,
        lag_alarm_s=lag_alarm,
        max_messages=max_messages,
        idle_exit_s=idle_exit,
    )
    stop = threading.Event()

    def on_signal(_sig: int, _frame: Any) -> None:
        stop.set()

    old_term = signal.signal(signal.SIGTERM, on_signal)
    old_int = signal.signal(signal.SIGINT, on_signal)
    host, port = broker_address(url, kind)
    filt = topic or ("aiguilleur/+/+" if kind == "mqtt" else "aiguilleur.>")

    def ready() -> None:
        print(
            f"subscribed: {kind} {host}:{port} {filt} as {client_id}",
            file=sys.stderr,
            flush=True,
        )

    try:
        with OpsCentre(open_store(store, create=True), CentreOptions()) as centre:
            run = mqtt_subscribe if kind == "mqtt" else nats_subscribe
            stats = run(centre, opts, stop=stop, on_ready=ready)
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
    d = stats.to_dict()
    if as_json:
        _print_json(d)
    else:
        t = Table(title=f"{kind} subscriber", show_header=False)
        for k in (
            "received",
            "stored",
            "duplicates",
            "dead_letters",
            "acknowledged",
            "analyses",
            "coalesced_events",
            "lag_alarms",
        ):
            t.add_row(k.replace("_", " "), str(d[k]))
        t.add_row("lag max", _fmt(d["lag_max_s"], 3, " s"))
        t.add_row("commit latency p50", _fmt(d["commit_latency_p50_s"], 4, " s"))
        t.add_row("commit latency p99", _fmt(d["commit_latency_p99_s"], 4, " s"))
        _stdout().print(t)
        for e in d["errors"]:
            _stderr().print(f"[red]error:[/] {e}")
    if d["errors"]:
        raise typer.Exit(EXIT_INCOMPLETE)


def _assets(text: str | None) -> tuple[tuple[str, int], ...]:
    from aiguilleur.errors import ValidationError

    if not text:
        return ()
    out = []
    for k, part in enumerate(p.strip() for p in text.split(",")):
        name, sep, unit = part.partition("=")
        try:
            u = int(unit) if sep else k + 1
        except ValueError:
            raise ValidationError(f"--assets: {part!r}: expected ASSET or ASSET=UNIT") from None
        out.append((name.strip(), u))
    return tuple(out)


@_guard
def simulate_telemetry(
    case: Annotated[
        str | None,
        typer.Argument(
            metavar="[CASE]",
            help="Bundled case or .m file (at the ops world's operating point); or use --store.",
            show_default=False,
        ),
    ] = None,
    broker: Annotated[str, typer.Option("--broker", help="mqtt or nats.")] = "mqtt",
    store: Annotated[
        str | None,
        typer.Option("--store", metavar="URL", help="Simulate the grid of this store's state."),
    ] = None,
    url: UrlOpt = None,
    site: Annotated[str, typer.Option("--site", help="Site name in topics and meter ids.")] = (
        "site1"
    ),
    prefix: Annotated[str, typer.Option("--prefix", help="Topic/subject prefix.")] = "aiguilleur",
    rate: Annotated[float, typer.Option("--rate", help="Scans per second (0: flat out).")] = 1.0,
    count: Annotated[int, typer.Option("--count", min=1, help="Scans to publish.")] = 10,
    redundancy: Annotated[
        float | None,
        typer.Option("--redundancy", help="Readings per state variable (default: every meter)."),
    ] = None,
    noise_vm: Annotated[
        float, typer.Option("--noise-vm", help="Std. deviation of voltage magnitudes, pu.")
    ] = 0.004,
    noise_mw: Annotated[
        float, typer.Option("--noise-mw", help="Std. deviation of powers, MW and Mvar.")
    ] = 1.0,
    dropout: Annotated[
        float, typer.Option("--dropout", help="Probability a reading is missing from a scan.")
    ] = 0.0,
    gross_error_rate: Annotated[
        float,
        typer.Option("--gross-error-rate", help="Probability a reading carries a gross error."),
    ] = 0.0,
    gross_error_sigma: Annotated[
        float, typer.Option("--gross-error-sigma", help="Gross error size, std. deviations.")
    ] = 20.0,
    assets: Annotated[
        str | None,
        typer.Option(
            "--assets",
            metavar="ASSET[=UNIT],...",
            help="Assets streaming C-MAPSS cycles (bundled test units 1-10).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
    stream: Annotated[str, typer.Option("--stream", help="NATS JetStream stream.")] = "AIGUILLEUR",
    per_message: Annotated[
        int, typer.Option("--readings-per-message", min=1, help="Most readings per message.")
    ] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Publish what a SCADA would for a grid: noisy readings, drop-outs, gross errors, assets."""
    import dataclasses
    from datetime import UTC, datetime, timedelta

    from aiguilleur.ops.telemetry_sim import (
        SimulatorOptions,
        TelemetrySimulator,
        publish_messages,
        simulation_grid,
    )

    kind = _broker(broker)
    opts = SimulatorOptions(
        site=site,
        prefix=prefix,
        count=count,
        rate_hz=rate,
        redundancy=redundancy,
        sigma_vm_pu=noise_vm,
        sigma_power_mw=noise_mw,
        dropout=dropout,
        gross_error_rate=gross_error_rate,
        gross_error_sigma=gross_error_sigma,
        readings_per_message=per_message,
        assets=_assets(assets),
        seed=seed,
    )
    net, clock = simulation_grid(case, store)
    # readings are taken after the store's clock (else they would be stale on arrival)
    start = clock + timedelta(seconds=1) if clock is not None else datetime.now(UTC)
    sim = TelemetrySimulator(net, dataclasses.replace(opts, start=start))
    rep = publish_messages(
        sim.scans(), kind, url=url, site=site, prefix=prefix, rate_hz=rate, stream=stream
    )
    rep.dropped = sim.dropped
    d = {**rep.to_dict(), "grid": net.name, "metered": sim.metered, "run": sim.run}
    if as_json:
        _print_json(d)
        return
    t = Table(title=f"telemetry published on {kind}", show_header=False)
    for k in ("grid", "metered", "scans", "messages", "readings", "dropped_readings"):
        t.add_row(k.replace("_", " "), str(d[k]))
    t.add_row("health messages", str(d["health_messages"]))
    t.add_row("gross errors", str(len(d["gross_errors"])))
    t.add_row("messages/s", _fmt(d["messages_per_s"], 1))
    _stdout().print(t)
    for g in d["gross_errors"][:10]:
        _stdout().print(
            f"gross error: scan {g['scan']} meter {g['meter']} ({g['quantity']} at "
            f"{g['element']}) off by {g['error']:+.4g}"
        )
