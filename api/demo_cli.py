"""``vpp guide`` and ``vpp demo``: the story of ``make run``, told against the service.

``vpp demo`` plays one operating day against a running service (``make run``): the
fleet, a load forecast, an aggregator's day-ahead schedule, then the evening peak as
a capacity request, dispatched to the simulated VENs (some opt out and are re-planned
around), delivered, measured, settled on chain and claimed. The evening's three hours
are compressed into minutes (intervals of ``--step-s`` seconds) so that the whole day
runs while one watches; every step prints its figures.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import requests
import typer
from rich.console import Console
from rich.table import Table

from api.cli_support import friendly
from api.settings import Settings

console = Console()

FINAL = ("delivered", "settled", "cancelled", "failed")


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


class Service:
    """The running service's API, with one key per role."""

    def __init__(self, url: str, keys: dict[str, str]) -> None:
        self.url = url.rstrip("/")
        self.keys = keys
        self.http = requests.Session()

    def call(self, method: str, path: str, role: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        # A GET is asked twice: the first may go out on a kept-alive connection the
        # server has just closed.
        for attempt in range(2 if method == "GET" else 1):
            try:
                answer = self.http.request(
                    method, self.url + path, headers=headers, timeout=120, **kwargs
                )
                break
            except requests.ConnectionError:
                if attempt == 0 and method == "GET":
                    continue
                raise DemoError(
                    f"no service answers at {self.url} (start it with `make run`)"
                ) from None
        if answer.status_code >= 400:
            raise DemoError(f"{method} {path}: HTTP {answer.status_code}: {answer.text[:400]}")
        return answer.json()


def _keys(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise DemoError(f"{path}: no dev keys file (`vpp keys dev` writes it)")
    keys: dict[str, str] = json.loads(path.read_text())
    return keys


def _step(title: str) -> None:
    console.rule(f"[bold]{title}")


def _wait_for_fleet(service: Service, wait_s: float = 120) -> int:
    """Wait until VENs poll the VTN and their number holds steady; returns it."""
    deadline = time.monotonic() + wait_s
    seen = -1
    while True:
        vtn = service.call("GET", "/health")["vtn"]
        if not vtn["running"]:
            raise DemoError("the service runs without its VTN (VTN_ENABLED=false)")
        count = int(vtn["connected_vens"])
        if count and count == seen:
            return count
        if time.monotonic() > deadline:
            if count:
                return count
            raise DemoError(f"no VEN polled the VTN in {wait_s:.0f} s: is the fleet running?")
        console.print(f"{count} VENs connected; waiting for the fleet...")
        seen = count
        time.sleep(3)  # within the server's 5 s keep-alive


def _pick_feeder(service: Service) -> tuple[str, float, int]:
    """The feeder with the most storage the VTN can reach now (enrolled through a
    connected VEN), that storage's discharge power [kW], and how many devices are
    enrolled in all."""
    rows = service.call(
        "GET",
        "/v1/grid/capacity",
        "operator",
        params=[("group_by", "feeder"), ("group_by", "device_type")],
    )
    table = Table(
        "feeder", "type", "devices", "enrolled", "online", "connected", "connected flex kW"
    )
    storage: dict[str, float] = {}
    enrolled = 0
    for row in rows:
        enrolled += row["enrolled_devices"]
        table.add_row(
            row["feeder"],
            row["device_type"],
            str(row["devices"]),
            str(row["enrolled_devices"]),
            str(row["online_devices"]),
            str(row["connected_devices"]),
            f"{row['connected_flex_kw']:,.0f}",
        )
        if row["device_type"] in ("battery", "c_and_i_storage"):
            # Storage can cut its import by its discharge power: half its flex span.
            half = (row["connected_flex_kw"] or 0.0) / 2
            storage[row["feeder"]] = storage.get(row["feeder"], 0.0) + half
    console.print(table)
    if not any(storage.values()):
        raise DemoError("no feeder has storage connected: is the simulated fleet running?")
    feeder = max(storage, key=lambda f: storage[f])
    return feeder, storage[feeder], enrolled


def _forecast(service: Service, feeder: str) -> None:
    answer = service.call(
        "POST", "/v1/forecasts", "analyst", json={"feeder": feeder, "horizon": "1D"}
    )
    p50 = [row["p50_kw"] for row in answer["intervals"]]
    console.print(
        f"load of {feeder}, next 24 h ({answer['method']}): peak {max(p50):,.1f} kW, "
        f"mean {sum(p50) / len(p50):,.1f} kW over {len(p50)} intervals"
    )


def _schedule(service: Service, feeder: str) -> None:
    day = (datetime.now(UTC) + timedelta(days=1)).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    # A two-price day: cheap at night and midday, dear in the evening peak.
    prices = [
        {
            "timestamp": (start + timedelta(hours=h)).isoformat(),
            "price_per_kwh": 0.32 if 17 <= h < 21 else 0.12 if 7 <= h < 17 else 0.08,
        }
        for h in range(24)
    ]
    accepted = service.call(
        "POST",
        "/v1/schedules/day-ahead",
        "aggregator",
        json={"date": day.isoformat(), "prices": prices, "feeder": feeder},
    )
    body = _wait(service, f"/v1/schedules/{accepted['id']}", "aggregator", ("planning",), 300)
    if body["status"] != "planned":
        raise DemoError(f"schedule {accepted['id']}: {body['status']}: {body['reason']}")
    saving = body["baseline_energy_cost"] - body["energy_cost"]
    console.print(
        f"day-ahead schedule {body['id']} for {day}: {body['devices']} devices, energy cost "
        f"{body['energy_cost']:,.2f} against {body['baseline_energy_cost']:,.2f} left alone "
        f"(saves {saving:,.2f})"
    )


def _wait(
    service: Service, path: str, role: str, waiting: tuple[str, ...], timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = service.call("GET", path, role)
        if body["status"] not in waiting:
            return body
        if time.monotonic() > deadline:
            raise DemoError(f"{path}: still {body['status']} after {timeout_s:.0f} s")
        time.sleep(1)


def _intervals(body: dict[str, Any]) -> Table:
    table = Table("interval", "requested kW", "planned kW", "committed kW", "delivered kW")

    def kw(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}"

    for row in body["intervals"]:
        table.add_row(
            row["start"][11:19],
            kw(row["requested_kw"]),
            kw(row["planned_kw"]),
            kw(row["committed_kw"]),
            kw(row["delivered_kw"]),
        )
    return table


def _peak(service: Service, feeder: str, kw: float, step_s: int, steps: int) -> dict[str, Any]:
    now = time.time()
    start = datetime.fromtimestamp(now - now % step_s + 4 * step_s, UTC)
    end = start + timedelta(seconds=steps * step_s)
    accepted = service.call(
        "POST",
        "/v1/capacity-requests",
        "operator",
        json={
            "feeder": feeder,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "kw": round(kw, 1),
            "resolution_s": step_s,
            "auto_dispatch": True,
        },
    )
    request_id = accepted["id"]
    console.print(
        f"capacity request {request_id}: cut {kw:,.1f} kW on {feeder} from "
        f"{start:%H:%M:%S} to {end:%H:%M:%S} UTC (the 17:00-20:00 peak, {steps} intervals "
        f"of {step_s} s)"
    )
    path = f"/v1/capacity-requests/{request_id}"
    body = _wait(service, path, "operator", ("planning", "planned"), 300)
    plan = body["plan"]
    console.print(
        f"planned: {plan.get('devices', 0)} devices connected, {len(plan.get('setpoints', {}))} "
        f"called; shortfall {plan.get('shortfall_kwh', 0):,.2f} kWh"
    )
    for entry in body["history"]:
        if entry["action"] == "round":
            console.print(
                f"  round {entry['round']}: {entry['called']} devices called, "
                f"{len(entry['left_out'])} left out (opted out or silent), worst shortfall "
                f"{max(entry['shortfall_kw'], default=0):,.1f} kW"
            )
    if body["status"] in ("cancelled", "failed"):
        raise DemoError(f"{request_id}: {body['status']}: {body['reason']}")
    answers = plan.get("answers", {})
    console.print(
        f"dispatched: {answers.get('optIn', 0)} opted in, {answers.get('optOut', 0)} opted out, "
        f"{answers.get('none', 0)} silent"
    )
    console.print("delivering; measured from the devices' reports as each interval ends")
    body = _wait(service, path, "operator", ("dispatched", "delivering"), 2 * steps * step_s + 600)
    if body["status"] != "delivered":
        raise DemoError(f"{request_id}: {body['status']}: {body['reason']}")
    console.print(_intervals(body))
    measured = body["plan"]["measurement"]
    asked = sum(i["requested_kw"] or 0.0 for i in body["intervals"])
    given = sum(i["delivered_kw"] or 0.0 for i in body["intervals"])
    console.print(
        f"request: delivered {given / len(body['intervals']):,.1f} kW on average for "
        f"{asked / len(body['intervals']):,.1f} kW asked ({given / asked:.0%}); devices: "
        f"{measured['delivered_kwh']:,.2f} kWh of the {measured['requested_kwh']:,.2f} kWh "
        "their setpoints asked, against their own baselines"
    )
    for reason in measured["unmeasured"][:5]:
        console.print(f"  not measured: {reason}")
    return body


def _settle(service: Service, body: dict[str, Any], rate: float) -> None:
    # The demo programs pay different rates: the epoch pays one.
    settling = service.call(
        "POST",
        f"/v1/capacity-requests/{body['id']}/settle",
        "operator",
        json={"rate_ovpp_per_kwh": rate},
    )
    console.print(
        f"epoch {settling['epoch']} prepared ({settling['epoch_status']}); job "
        f"{settling['job_id']} sends it on chain"
    )
    job = _wait(service, f"/v1/jobs/{settling['job_id']}", "operator", ("queued", "running"), 300)
    if job["status"] != "done":
        raise DemoError(f"settlement job {job['job_id']}: {job['status']}: {job['error']}")
    settled = service.call("GET", f"/v1/capacity-requests/{body['id']}", "operator")
    if settled["status"] != "settled":
        raise DemoError(f"{body['id']}: {settled['status']} after its settlement job")
    epoch = settled["settlement_epoch"]
    paid = service.call("GET", f"/v1/settlements/{epoch}", "operator")
    console.print(
        f"settled on chain: epoch {epoch}, {paid['rewards']} rewards, {paid['total_ovpp']:,.4f} "
        f"OVPP, root {paid['root'][:18]}..., transaction {str(paid['tx_hash'])[:18]}..."
    )
    claims = service.call("POST", f"/v1/settlements/{epoch}/claims", "operator")
    console.print(f"claimed for the owners: {claims}")
    leaf = paid["leaves"][0]
    rewards = service.call("GET", f"/v1/devices/{leaf['device_id']}/rewards", "operator")
    console.print(
        f"device {leaf['device_id'][:12]}... earned {rewards[0]['amount_ovpp']:,.4f} OVPP "
        f"(claimed: {rewards[0]['claimed']})"
    )


@friendly
def demo(
    url: Annotated[str, typer.Option(help="The running service")] = "http://127.0.0.1:8000",
    keys_file: Annotated[
        Path | None, typer.Option(help="Dev keys file (default: VAR_DIR/dev-keys.json)")
    ] = None,
    share: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="Share of the feeder's connected storage asked for"),
    ] = 0.2,
    step_s: Annotated[
        int, typer.Option(min=10, max=900, help="Interval length of the compressed peak [s]")
    ] = 20,
    steps: Annotated[int, typer.Option(min=1, max=48, help="Intervals of the peak")] = 9,
    rate: Annotated[
        float, typer.Option(min=0, help="Reward of the settlement [OVPP per kWh]")
    ] = 0.5,
) -> None:
    """Play one operating day against the running service and print each step."""
    settings = Settings()
    service = Service(url, _keys(keys_file or settings.dev_keys_path))
    _step("1. the fleet")
    connected = _wait_for_fleet(service)
    feeder, storage_kw, enrolled = _pick_feeder(service)
    console.print(
        f"{connected} VENs of {enrolled} enrolled devices connected to the VTN; {feeder}: "
        f"{storage_kw:,.0f} kW of storage discharge connected"
    )
    _step("2. forecast")
    _forecast(service, feeder)
    _step("3. day-ahead schedule")
    _schedule(service, feeder)
    _step("4. the evening peak: a capacity request")
    body = _peak(service, feeder, share * storage_kw, step_s, steps)
    _step("5. settlement and claim")
    _settle(service, body, rate)
    console.rule("[bold green]the day is done")


@friendly
def guide(
    url: Annotated[str, typer.Option(help="Where the service listens")] = "http://127.0.0.1:8000",
) -> None:
    """How to look at the running service: the dashboard, the keys, one request."""
    settings = Settings()
    start = (datetime.now(UTC) + timedelta(minutes=5)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=30)
    body = json.dumps(
        {
            "feeder": "F-01",
            "start": start.isoformat().replace("+00:00", "Z"),
            "end": end.isoformat().replace("+00:00", "Z"),
            "kw": 50,
            "resolution_s": 300,
        }
    )
    keys = settings.dev_keys_path.resolve()
    # Plain text: a wrapped command line could not be pasted.
    typer.echo(
        f"""OpenVPP is starting
  dashboard:    {url}/  (paste the operator key from the keys file)
  API docs:     {url}/docs
  dev keys:     {keys}
  OpenADR VTN:  {settings.vtn_url}  (a simulated fleet of VENs connects to it)

Ask for capacity (cut 50 kW on F-01 for half an hour, five minutes from now):
  KEY=$(python3 -c "import json; print(json.load(open('{keys}'))['operator'])")
  curl -s -X POST {url}/v1/capacity-requests -H "Authorization: Bearer $KEY" \\
    -H 'content-type: application/json' -d '{body}'
and follow it: curl -s {url}/v1/capacity-requests/ID -H "Authorization: Bearer $KEY"

Play a whole day against it (forecast, schedule, peak, delivery, settlement, claim):
  .venv/bin/vpp demo
"""
    )
