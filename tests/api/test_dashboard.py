"""The operator dashboard in a real browser.

Headless Chromium (``CHROMIUM_BIN``: Debian's ``chromium``, installed by ``.ci/run``)
driven by Playwright loads the page from the service running under uvicorn on
loopback, with a small demo fleet in its database. The page is checked against what
the JSON API answers. Screenshots go to ``TEST_ARTIFACTS_DIR`` (default
``tests/artifacts``).

The service runs on SQLite only: the page reads the same routes on either back-end,
and their storage is tested on both elsewhere.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import Engine

from api.main import create_app
from api.routers.dashboard import STATIC_DIR
from api.settings import Settings
from api.simulate_cli import enrolled_devices
from dispatch.simulator import SimulatedVen, household_shape, model_for, start_fleet, stop_fleet
from registry.db import make_engine, session_factory
from registry.demo import build_fleet, seed_demo
from registry.identity import device_id
from registry.keys import Role, create_key
from tests.api.test_schedules_api import ercot_prices, tomorrow
from tests.conftest import free_port

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PLANNING_TIMEOUT_MS = 120_000
#: How long the page may take to show what the service answers (it refreshes every 3 s).
PAGE_TIMEOUT_MS = 15_000
expect.set_options(timeout=PAGE_TIMEOUT_MS)
ARTIFACTS_DIR = Path(
    os.environ.get("TEST_ARTIFACTS_DIR", Path(__file__).resolve().parents[1] / "artifacts")
)


def chromium_binary() -> str:
    binary = os.environ.get("CHROMIUM_BIN")
    if not binary:
        pytest.skip("CHROMIUM_BIN is not set (.ci/run sets it to Debian's chromium)")
    return binary


@dataclass(frozen=True)
class Service:
    url: str
    keys: dict[str, str]
    feeders: list[str]
    device_ids: list[str]

    def get(self, path: str, role: str = "operator", **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        response = httpx.get(f"{self.url}{path}", headers=headers, params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any], role: str = "operator") -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        return httpx.post(f"{self.url}{path}", headers=headers, json=body, timeout=30)

    def wait_job(self, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
        """The job once it is no longer queued or running."""
        deadline = time.monotonic() + timeout_s
        while True:
            job: dict[str, Any] = self.get(f"/v1/jobs/{job_id}")
            if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
                return job
            time.sleep(0.2)


def _seeded_engine(template: Path, folder: Path) -> tuple[Engine, list[str], list[str]]:
    path = folder / "dashboard.db"
    shutil.copy(template, path)
    engine = make_engine(f"sqlite:///{path}")
    fleet = build_fleet(40, 3, seed=1, days=7)
    with session_factory(engine).begin() as session:
        seed_demo(session, fleet, vtn_url="http://127.0.0.1:1/OpenADR2/Simple/2.0b")
    feeders = sorted({d["feeder"] for d in fleet.devices})
    return engine, feeders, [device_id(d["make"], d["model"], d["serial"]) for d in fleet.devices]


class VenFleet:
    """Every enrolled device of the demo fleet as a real VEN (openleadr client, device
    model of its kind) on an event loop of its own thread."""

    def __init__(self, settings: Settings) -> None:
        rng = random.Random(1)
        shapes = [household_shape(seed=k) for k in range(4)]
        self.vens = [
            SimulatedVen(
                ven_id,
                settings.vtn_url,
                model_for(kind, p_max_kw, e_max_kwh, rng, shapes),
                rng=random.Random(ven_id),
                report_interval_s=settings.vtn_report_interval_s,
            )
            for ven_id, kind, p_max_kw, e_max_kwh in enrolled_devices(settings, 10_000)
        ]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vens", daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(start_fleet(self.vens, wait_s=20), self.loop).result(60)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(stop_fleet(self.vens), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Service]:
    """The whole service (API, page, VTN, job runner) under uvicorn on a free loopback
    port, with the demo fleet's enrolled devices connected as VENs."""
    chromium_binary()
    folder = tmp_path_factory.mktemp("dashboard")
    engine, feeders, device_ids = _seeded_engine(sqlite_template, folder)
    with session_factory(engine).begin() as session:
        keys = {
            role.value: create_key(session, f"dash-{role.value}", role)
            for role in (Role.operator, Role.analyst, Role.integrator, Role.aggregator)
        }
    vtn_url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    # A short answer window in one round: a dispatch holds the job runner no longer.
    settings = Settings(
        database_url=f"sqlite:///{folder / 'dashboard.db'}",
        var_dir=folder,
        vtn_url=vtn_url,
        vtn_poll_interval_s=1,
        vtn_report_interval_s=5,
        dispatch_answer_within_s=3,
        dispatch_max_rounds=1,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="dashboard-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the service did not start under uvicorn within 30 s")
        time.sleep(0.05)
    vens = VenFleet(settings)
    vens.start()
    yield Service(f"http://127.0.0.1:{port}", keys, feeders, device_ids)
    vens.stop()
    server.should_exit = True
    thread.join(timeout=30)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_binary(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, service: Service) -> Iterator[Page]:
    """A fresh page in UTC; it fails the test on an uncaught script error or on a
    request to anywhere but the service (the page must work with no internet)."""
    context = browser.new_context(timezone_id="UTC", viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(service.url + "/") else elsewhere.append(request.url)
        ),
    )
    yield page
    context.close()
    assert not errors, f"script errors on the page: {errors}"
    assert not elsewhere, f"the page fetched from outside the service: {elsewhere}"


def open_with_key(page: Page, service: Service, role: str) -> None:
    page.goto(service.url + "/")
    page.fill("#api-key", service.keys[role])
    page.click("#key-form button[type=submit]")


def window_from_now(minutes: int = 60) -> tuple[datetime, datetime]:
    """A window starting at the first quarter hour at least five minutes from now."""
    soon = datetime.now(UTC) + timedelta(minutes=5)
    quarter, origin = timedelta(minutes=15), datetime(2000, 1, 1, tzinfo=UTC)
    start = origin + math.ceil((soon - origin) / quarter) * quarter
    return start, start + timedelta(minutes=minutes)


def local_input(moment: datetime) -> str:
    """A datetime-local input's value in the page's time zone (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def fill_request(page: Page, feeder: str, start: datetime, end: datetime, kw: str) -> None:
    page.select_option("#req-area", f"feeder:{feeder}")
    page.fill("#req-start", local_input(start))
    page.fill("#req-end", local_input(end))
    page.fill("#req-kw", kw)


def eventually(check: Callable[[], bool], timeout_s: float = 15) -> None:
    """Wait until ``check()`` holds (the page refreshes every few seconds)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the page did not catch up with the service"
        time.sleep(0.5)


def wait_while(
    service: Service, request_id: str, statuses: set[str], timeout_s: float = 120
) -> dict[str, Any]:
    """The request once its status is none of ``statuses`` (or at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        request: dict[str, Any] = service.get(f"/v1/capacity-requests/{request_id}")
        if request["status"] not in statuses or time.monotonic() > deadline:
            return request
        time.sleep(0.2)


def column(page: Page, table: str, index: int) -> list[str]:
    return page.locator(f"{table} tbody tr td:nth-child({index})").all_text_contents()


def test_page_needs_no_key_and_bundles_its_chart_library(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = [
        "static/dashboard.js",
        "static/dashboard.css",
        "static/vendor/uplot/uPlot.iife.min.js",
    ]
    for asset in assets:
        assert f'"{asset}"' in page.text
        served = client.get(f"/{asset}")
        assert served.status_code == 200
        assert served.content == (STATIC_DIR / asset.removeprefix("static/")).read_bytes()
    assert client.get("/v1/grid/capacity").status_code == 401


def test_fleet_overview_shows_the_feeders_of_the_registry(page: Page, service: Service) -> None:
    open_with_key(page, service, "analyst")
    rows = service.get("/v1/grid/capacity", group_by=["region", "feeder", "device_type"])
    expect(page.locator("#fleet-table tbody tr")).to_have_count(len(rows))
    assert sorted(set(column(page, "#fleet-table", 2))) == service.feeders
    shown = {
        (region, feeder, kind): (int(devices), float(available))
        for region, feeder, kind, devices, available in zip(
            *(column(page, "#fleet-table", index) for index in (1, 2, 3, 4, 9)),
            strict=True,
        )
    }
    assert shown == {
        (r["region"], r["feeder"], r["device_type"]): (
            r["devices"],
            pytest.approx(r["available_flex_kw"], abs=0.051),
        )
        for r in rows
    }
    # The request form offers each feeder and each region of the fleet.
    areas = page.locator("#req-area option").evaluate_all("(options) => options.map(o => o.value)")
    regions = sorted({r["region"] for r in rows})
    assert areas == [f"feeder:{f}" for f in service.feeders] + [f"region:{r}" for r in regions]

    schedules = httpx.get(
        service.url + "/v1/schedules",
        headers={"Authorization": f"Bearer {service.keys['analyst']}"},
    )
    if schedules.status_code == 404 or schedules.json() == []:
        expect(page.locator('.message[data-for="schedules"]')).to_have_text("No schedules.")
    else:
        expect(page.locator("#schedule-select option")).to_have_count(len(schedules.json()))


def test_a_wrong_key_is_told(page: Page, service: Service) -> None:
    page.goto(service.url + "/")
    page.fill("#api-key", "not-a-key")
    page.click("#key-form button[type=submit]")
    refused = httpx.get(
        service.url + "/v1/grid/capacity", headers={"Authorization": "Bearer not-a-key"}
    )
    assert refused.status_code == 401
    expect(page.locator("#auth-status")).to_have_text(
        f"Key refused (401): {refused.json()['detail']}"
    )
    expect(page.locator('.message[data-for="fleet"]')).to_contain_text("401")
    expect(page.locator("#fleet-table tbody tr")).to_have_count(0)


def test_rewards_per_epoch_follow_the_settlements(page: Page, service: Service) -> None:
    rewarded = service.device_ids[:2]
    deliveries = [
        {"device_id": rewarded[0], "delivered_kwh": 3.0, "availability": 1, "data_quality": 1},
        {"device_id": rewarded[1], "delivered_kwh": 1.5, "availability": 0.5, "data_quality": 1},
    ]
    settlement = {"epoch": 7, "rate_ovpp_per_kwh": 2.0, "deliveries": deliveries}
    posted = service.post("/v1/settlements", settlement, role="integrator")
    assert posted.status_code in (200, 202), posted.text
    job = service.wait_job(posted.json()["job_id"])
    assert job["status"] == "done", job

    open_with_key(page, service, "analyst")
    epochs = service.get("/v1/settlements")
    expect(page.locator("#settlement-table tbody tr")).to_have_count(len(epochs))
    assert column(page, "#settlement-table", 1) == [str(e["epoch"]) for e in epochs]
    assert [float(t) for t in column(page, "#settlement-table", 5)] == pytest.approx(
        [e["total_ovpp"] for e in epochs], abs=5e-4
    )
    chart = page.evaluate("() => window.dashboard.charts.rewards.data")
    by_epoch = sorted(epochs, key=lambda e: e["epoch"])
    assert chart == [[e["epoch"] for e in by_epoch], [e["total_ovpp"] for e in by_epoch]]

    page.fill("#reward-device", rewarded[1])
    page.click("#device-rewards-form button[type=submit]")
    rewards = service.get(f"/v1/devices/{rewarded[1]}/rewards")
    assert rewards
    expect(page.locator("#device-reward-table tbody tr")).to_have_count(len(rewards))
    amounts = [float(a) for a in column(page, "#device-reward-table", 2)]
    assert amounts == pytest.approx([r["amount_ovpp"] for r in rewards], abs=5e-4)


def test_a_role_without_rights_is_told(page: Page, service: Service) -> None:
    open_with_key(page, service, "analyst")
    expect(page.locator("#fleet-table tbody tr").first).to_be_visible()
    start, end = window_from_now()
    fill_request(page, service.feeders[0], start, end, "100")
    page.click("#request-form button[type=submit]")
    body = {"feeder": service.feeders[0], "start": start.isoformat(), "end": end.isoformat()}
    refused = service.post("/v1/capacity-requests", {**body, "kw": 100}, role="analyst")
    assert refused.status_code == 403
    expect(page.locator("#request-form-error")).to_have_text(
        f"Not allowed for this key (403): {refused.json()['detail']}"
    )


@pytest.mark.parametrize("kw", ["-250", "lots"])
def test_a_bad_kw_shows_the_services_message_next_to_the_field(
    page: Page, service: Service, kw: str
) -> None:
    open_with_key(page, service, "operator")
    expect(page.locator("#fleet-table tbody tr").first).to_be_visible()
    before = service.get("/v1/capacity-requests")
    start, end = window_from_now()
    fill_request(page, service.feeders[0], start, end, kw)
    page.click("#request-form button[type=submit]")

    value: Any = float(kw) if kw.lstrip("-").isdigit() else kw
    body = {"feeder": service.feeders[0], "start": start.isoformat(), "end": end.isoformat()}
    refused = service.post("/v1/capacity-requests", {**body, "kw": value})
    assert refused.status_code == 422
    [message] = [d["msg"] for d in refused.json()["detail"] if d["loc"] == ["body", "kw"]]
    expect(page.locator('.field-error[data-field="kw"]')).to_have_text(f"kw: {message}")
    for field in ("start", "end", "feeder"):
        expect(page.locator(f'.field-error[data-field~="{field}"]')).to_have_text("")
    assert len(service.get("/v1/capacity-requests")) == len(before)


def test_a_check_across_fields_is_shown_next_to_the_field_it_names(
    page: Page, service: Service
) -> None:
    open_with_key(page, service, "operator")
    expect(page.locator("#fleet-table tbody tr").first).to_be_visible()
    start, end = window_from_now()
    fill_request(page, service.feeders[0], end, start, "50")
    page.click("#request-form button[type=submit]")

    body = {"feeder": service.feeders[0], "start": end.isoformat(), "end": start.isoformat()}
    refused = service.post("/v1/capacity-requests", {**body, "kw": 50})
    assert refused.status_code == 422
    [item] = refused.json()["detail"]
    assert item["loc"] == ["body"]
    prefix = "Value error, end: "
    assert item["msg"].startswith(prefix)
    expect(page.locator('.field-error[data-field="end"]')).to_have_text(
        "end: " + item["msg"].removeprefix(prefix)
    )
    expect(page.locator("#request-form-error")).to_have_text("")


def test_a_request_submitted_on_the_page_is_charted_as_planned(
    page: Page, service: Service
) -> None:
    open_with_key(page, service, "operator")
    expect(page.locator("#fleet-table tbody tr").first).to_be_visible()
    feeder = service.feeders[-1]
    flex = service.get("/v1/grid/capacity", group_by=["feeder"], feeder=feeder)[0]
    # More than the enrolled devices can give: a shortfall, and reasons for it.
    kw = round(flex["enrolled_flex_kw"] * 1.5, 1)
    start, end = window_from_now()
    fill_request(page, feeder, start, end, str(kw))
    page.click("#request-form button[type=submit]")

    expect(page.locator("#request-detail")).to_be_visible()
    page.wait_for_function(
        "() => (window.dashboard.state.detail?.intervals ?? []).length > 0",
        timeout=PLANNING_TIMEOUT_MS,
    )
    request_id = page.locator("#detail-id").inner_text()
    # Dispatched on its own once planned; the page follows until it shows the same.
    stored = wait_while(service, request_id, {"planning", "planned"})
    assert stored["status"] == "dispatched", stored
    expect(page.locator("#detail-status")).to_have_attribute("data-status", "dispatched")
    assert (stored["feeder"], stored["kw"]) == (feeder, kw)
    assert datetime.fromisoformat(stored["start"]) == start
    assert datetime.fromisoformat(stored["end"]) == end
    intervals = stored["intervals"]
    assert intervals, stored

    # One step per interval, closed by a point at the window's end.
    chart: list[list[float | None]] = page.evaluate("() => window.dashboard.charts.request.data")
    starts = [datetime.fromisoformat(i["start"]).timestamp() for i in intervals]
    assert chart[0] == [*starts, end.timestamp()]
    for series, name in ((1, "requested_kw"), (2, "planned_kw"), (3, "committed_kw")):
        values = [i[name] for i in intervals]
        assert chart[series] == [*values, values[-1]]
    shown = [float(v) for v in column(page, "#interval-table", 3)]
    assert shown == pytest.approx([i["planned_kw"] for i in intervals], abs=0.051)

    # The legend follows the cursor: over the last interval it shows its planned kW.
    last = len(intervals) - 1
    page.locator("#request-chart").scroll_into_view_if_needed()
    x, y = page.evaluate(
        """(i) => {
            const u = window.dashboard.charts.request;
            const box = u.over.getBoundingClientRect();
            return [box.left + u.valToPos(u.data[0][i], "x") - 2, box.top + box.height / 2];
        }""",
        last,
    )
    page.mouse.move(x, y)
    legend = page.locator("#request-chart .u-legend .u-series").nth(2).locator(".u-value")
    expect(legend).not_to_have_text("–")
    assert float(legend.inner_text()) == pytest.approx(intervals[last]["planned_kw"], abs=0.051)

    row = page.locator(f'#request-table tbody tr[data-id="{request_id}"]')
    expect(row).to_have_class("selected")

    def listed_status() -> str:
        listed = service.get("/v1/capacity-requests")
        return str(next(r["status"] for r in listed if r["id"] == request_id))

    eventually(lambda: row.locator("td").nth(4).inner_text() == listed_status())
    # Each interval that falls short has a line: by how much, and every reason given.
    explained = [i for i in intervals if i["reasons"]]
    assert explained and all(i["reasons"] for i in intervals if i["shortfall_kw"] > 1e-6)
    lines = page.locator("#shortfall-reasons li")
    expect(lines).to_have_count(len(explained))
    for line, interval in zip(lines.all_inner_texts(), explained, strict=True):
        short = re.search(r"short (-?[\d.]+) kW: ", line)
        assert short, line
        assert float(short[1]) == pytest.approx(interval["shortfall_kw"], abs=0.051)
        assert line.endswith("; ".join(interval["reasons"]))

    # One event per device called, each shown under its VEN.
    def events_shown() -> bool:
        events = service.get("/v1/events", capacity_request_id=request_id)
        shown = list(
            zip(column(page, "#event-table", 1), column(page, "#event-table", 4), strict=True)
        )
        return bool(events) and sorted(shown) == sorted((e["ven_id"], e["status"]) for e in events)

    eventually(events_shown, timeout_s=60)

    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS_DIR / "dashboard.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_request_waiting_for_approval_is_approved_then_cancelled_on_the_page(
    page: Page, service: Service
) -> None:
    open_with_key(page, service, "operator")
    expect(page.locator("#fleet-table tbody tr").first).to_be_visible()
    feeder = service.feeders[0]
    flex = service.get("/v1/grid/capacity", group_by=["feeder"], feeder=feeder)[0]
    start, end = window_from_now()
    fill_request(page, feeder, start, end, str(round(flex["enrolled_flex_kw"] / 4, 1)))
    page.uncheck("#req-auto")
    page.click("#request-form button[type=submit]")
    page.wait_for_function(
        "() => window.dashboard.state.detail?.status === 'planned'", timeout=PLANNING_TIMEOUT_MS
    )
    request_id = page.locator("#detail-id").inner_text()
    assert service.get(f"/v1/capacity-requests/{request_id}")["auto_dispatch"] is False
    assert service.get("/v1/events", capacity_request_id=request_id) == []
    expect(page.locator("#event-summary")).to_have_text("No events sent for this request.")

    page.click("#approve-request")
    expect(page.locator("#approve-request")).to_be_hidden()
    history = service.get(f"/v1/capacity-requests/{request_id}")["history"]
    assert "approved" in [entry["action"] for entry in history]
    eventually(lambda: len(service.get("/v1/events", capacity_request_id=request_id)) > 0)

    page.click("#cancel-request")
    expect(page.locator("#detail-status")).to_have_attribute("data-status", "cancelled")
    assert service.get(f"/v1/capacity-requests/{request_id}")["status"] == "cancelled"
    expect(page.locator("#cancel-request")).to_be_hidden()


def test_a_day_ahead_schedule_is_charted_with_its_baseline_and_prices(
    page: Page, service: Service
) -> None:
    day = tomorrow()
    body = {"date": day, "prices": ercot_prices(day), "feeder": service.feeders[1]}
    accepted = service.post("/v1/schedules/day-ahead", body, role="aggregator")
    assert accepted.status_code == 202, accepted.text
    schedule_id = accepted.json()["id"]
    deadline = time.monotonic() + 120
    while (schedule := service.get(f"/v1/schedules/{schedule_id}"))["status"] == "planning":
        assert time.monotonic() < deadline, "the schedule was not planned within 120 s"
        time.sleep(0.2)
    assert schedule["status"] == "planned", schedule

    open_with_key(page, service, "analyst")
    expect(page.locator("#schedule-select")).to_have_value(schedule_id)
    expect(page.locator("#schedule-summary")).to_contain_text(f"{schedule['devices']} devices")
    page.wait_for_function("() => window.dashboard.charts.schedule")
    chart = page.evaluate("() => window.dashboard.charts.schedule.data")
    aggregate = schedule["aggregate"]
    starts = [datetime.fromisoformat(a["start"]).timestamp() for a in aggregate]
    assert chart[0] == [*starts, starts[-1] + schedule["resolution_s"]]
    for series, name in ((1, "baseline_kw"), (2, "p_kw"), (3, "import_price_per_kwh")):
        values = [a[name] for a in aggregate]
        assert chart[series] == [*values, values[-1]]
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    page.locator("#schedules").screenshot(path=ARTIFACTS_DIR / "dashboard-schedule.png")
