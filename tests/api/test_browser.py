"""The dashboard in a real browser: Debian's chromium driven by Playwright.

The server runs as `aiguilleur serve` in a subprocess on a copy of the test
world; the test signs in, posts a branch trip through the API, sees the alarm
and the proposal card appear, approves it, and sees the state change.
Screenshots are kept in ``test-artefacts/browser`` (or
``$AIGUILLEUR_TEST_ARTEFACTS``).

Playwright cannot download its own browser here, so the test uses Debian's
``chromium`` package, installing it with apt-get when it is missing and the
test runs as root (as CI does); otherwise it is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import OPERATOR, VIEWER
from tests.conftest import REPO_ROOT
from tests.ops.conftest import at

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


def ensure_chromium() -> tuple[str | None, str]:
    """Debian's chromium, installed with apt-get when missing and possible; (path, why not)."""
    path = _find_chromium()
    if path:
        return path, ""
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and there is no apt-get to install it"
    if os.geteuid() != 0:
        return (
            None,
            "chromium is not installed and installing it needs root: apt-get install chromium",
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"]):
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired):
            break
        path = _find_chromium()
        if path:
            return path, ""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # after the update
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"],
            env=env,
            capture_output=True,
            timeout=900,
            check=False,
        )
    path = _find_chromium()
    return (
        path,
        "" if path else "apt-get could not install chromium (no access to a Debian mirror?)",
    )


@pytest.fixture(scope="module")
def chromium() -> str:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (dev extra)")
    path, why = ensure_chromium()
    if path is None:
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def artefacts() -> Path:
    d = Path(os.environ.get("AIGUILLEUR_TEST_ARTEFACTS", REPO_ROOT / "test-artefacts")) / "browser"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, method="GET" if body is None else "POST")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, data=data, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture
def server(base_store: Path, tmp_path: Path) -> Iterator[str]:
    store = tmp_path / "ops.db"
    shutil.copy(base_store, store)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"operator:alice:{OPERATOR}\nviewer:bob:{VIEWER}\n")
    port = _free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiguilleur.cli",
            "serve",
            "--store",
            str(store),
            "--port",
            str(port),
            "--tokens",
            str(tokens),
            "--case",
            "case14",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                code, _ = _http(f"{base}/healthz")
                if code == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail(
                    f"the server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "server.log").read_text()
    assert OPERATOR not in text and VIEWER not in text
    assert "Traceback" not in text, text[-3000:]


def _wait(cond: Any, timeout_s: float = 20.0) -> None:
    """Poll ``cond`` from Python (the page's CSP forbids the eval behind wait_for_function)."""
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the page")
        time.sleep(0.05)


def test_dashboard_trip_alarm_proposal_approve(
    chromium: str, server: str, artefacts: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1600},
        )
        errors: list[str] = []
        requests: list[str] = []
        try:
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"{server}/")
            page.fill("#token", OPERATOR)
            page.click("#login button")
            page.wait_for_selector("#grid[data-draw-ms]", timeout=30_000)
            page.wait_for_selector("#conn.live", timeout=30_000)
            assert page.inner_text("#who") == "alice (operator)"
            assert "14 buses, 20 branches" in page.inner_text("#grid-summary")
            _wait(lambda: "routes" in page.inner_text("#fleet-summary"))
            page.screenshot(path=str(artefacts / "1-signed-in.png"), full_page=True)
            version0 = page.get_attribute("#grid", "data-version")

            # a forecast and a flood: the fan chart and the closed streets appear
            start = at(0)
            code, res = _http(
                f"{server}/events",
                OPERATOR,
                [
                    {
                        "id": "browser-forecast",
                        "type": "forecast_issued",
                        "occurred_at": at(20),
                        "source": "forecaster",
                        "start": start,
                        "p10_mw": [230, 240, 250, 245, 235, 225],
                        "p50_mw": [250, 262, 275, 270, 258, 247],
                        "p90_mw": [270, 285, 300, 296, 282, 270],
                    },
                    {
                        "id": "browser-flood",
                        "type": "road_closure",
                        "occurred_at": at(21),
                        "source": "police",
                        "closure": "flood-1",
                        "area": {"center_lat": 43.7416, "center_lon": 7.419, "radius_m": 150},
                    },
                ],
            )
            assert code == 202, res
            _wait(lambda: "forecast" in page.inner_text("#forecast-note"))
            _wait(lambda: "0 closed" not in page.inner_text("#fleet-summary"), 40)
            page.screenshot(path=str(artefacts / "1b-forecast-and-flood.png"), full_page=True)

            code, res = _http(
                f"{server}/events",
                OPERATOR,
                {
                    "id": "browser-trip-1",
                    "type": "branch_trip",
                    "occurred_at": at(30),
                    "source": "scada:test",
                    "branch": "branch:1",
                },
            )
            assert code == 202, res
            seq = res["results"][0]["seq"]
            page.wait_for_selector(f"#alarms li[data-id^='A{seq}-']", timeout=20_000)
            card = f".card[data-id='P{seq}-grid']"
            page.wait_for_selector(f"{card} button.approve", timeout=20_000)
            _wait(lambda: "out: branch:1" in page.inner_text("#grid-summary"))
            version1 = page.get_attribute("#grid", "data-version")
            m = page.evaluate("window.aiguilleur.metrics")
            shown = m["eventShownAt"][str(seq)]
            commit_to_screen_s = (shown[1] - shown[0]) / 1000.0
            mine = [v for k, v in m["alarmShownAt"].items() if k.startswith(f"A{seq}-")]
            alarm_s = (min(v[1] for v in mine) - shown[0]) / 1000.0
            alarm_stored_to_screen_s = max((v[1] - v[0]) / 1000.0 for v in mine)
            assert 0 <= alarm_stored_to_screen_s < 1.0, alarm_stored_to_screen_s
            assert 0 <= commit_to_screen_s < 1.0, commit_to_screen_s
            assert alarm_s < 5.0, alarm_s  # includes the responder's analysis of case14
            (artefacts / "timings.json").write_text(
                json.dumps(
                    {
                        "event_commit_to_screen_s": commit_to_screen_s,
                        "alarm_commit_to_screen_s": alarm_stored_to_screen_s,
                        "event_commit_to_alarm_on_screen_s": alarm_s,
                        "grid_draw_ms": m["gridDrawMs"],
                    },
                    indent=1,
                )
            )
            assert "holds in AC" in page.inner_text(card)
            page.screenshot(path=str(artefacts / "2-alarm-and-proposal.png"), full_page=True)

            asked: list[str] = []

            def answer(d: Any) -> None:
                asked.append(d.message)
                d.accept()

            page.on("dialog", answer)  # the plan sheds load: the page asks first
            page.click(f"{card} button.approve")
            page.wait_for_selector(f".card.approved[data-id='P{seq}-grid']", timeout=20_000)
            assert "approved by alice" in page.inner_text(f".card[data-id='P{seq}-grid']")
            assert asked and "sheds" in asked[0] and "MW of load" in asked[0]
            _wait(
                lambda: page.get_attribute("#grid", "data-version") not in (version0, version1, "")
            )
            assert "out: branch:1" in page.inner_text("#grid-summary")
            page.wait_for_selector("#timeline li:has-text('proposal_approved')", timeout=20_000)
            page.screenshot(path=str(artefacts / "3-approved.png"), full_page=True)
            code, p = _http(f"{server}/proposals/P{seq}-grid", VIEWER)
            assert (
                code == 200 and p["status"] == "approved" and p["decision"]["operator"] == "alice"
            )
            code, st = _http(f"{server}/state", VIEWER)
            assert f"P{seq}-grid" not in st["pending"] and st["last_seq"] > seq
            # acknowledge an alarm from the page
            aid = page.get_attribute(f"#alarms li[data-id^='A{seq}-'] button", "data-alarm")
            page.click(f"#alarms li[data-id='{aid}'] button")
            page.wait_for_selector(f"#alarms li[data-id='{aid}']", state="detached", timeout=20_000)
        finally:
            ctx.close()
    assert not errors, errors
    outside = [
        u
        for u in requests
        if not u.startswith(server.replace("http", "ws"))
        and not u.startswith(server)
        and not u.startswith("data:")
    ]
    assert not outside, outside  # the page works offline: nothing from anywhere else


def test_viewer_sees_but_cannot_decide(chromium: str, server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    _http(
        f"{server}/events",
        OPERATOR,
        {
            "id": "browser-trip-2",
            "type": "branch_trip",
            "occurred_at": at(31),
            "source": "scada:test",
            "branch": "branch:1",
        },
    )
    with sync_playwright() as p:
        b = p.chromium.launch_persistent_context(
            str(tmp_path / "profile2"), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = b.new_page()
            page.goto(f"{server}/ui/")
            page.fill("#token", VIEWER)
            page.click("#login button")
            page.wait_for_selector(".card button.approve", timeout=30_000)
            assert page.inner_text("#who") == "bob (viewer)"
            assert page.is_disabled(".card button.approve")
            page.evaluate(
                "sessionStorage.setItem('aiguilleur-token', 'wrong-token-wrong-token'); "
                "location.reload()"
            )
            page.wait_for_selector("#login:not([hidden])", timeout=20_000)
            assert "refused" in page.inner_text("#login-error")
        finally:
            b.close()
