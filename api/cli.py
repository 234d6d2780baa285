"""The ``vpp`` command line: database, keys, registry import, demo fleet and the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from api.cli_support import friendly
from api.demo_cli import demo, guide
from api.forecast_cli import forecast_app
from api.settings import Settings
from api.simulate_cli import simulate_fleet
from registry.db import make_engine, session_factory, upgrade

app = typer.Typer(
    help="OpenVPP: demand-response dispatch for virtual power plants.", no_args_is_help=True
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
registry_app = typer.Typer(help="The DER registry.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(registry_app, name="registry")
optimize_app = typer.Typer(help="Plan a fleet with the optimizer.", no_args_is_help=True)
app.add_typer(optimize_app, name="optimize")
app.add_typer(forecast_app, name="forecast")
chain_app = typer.Typer(help="The EVM chain: contracts and their state.", no_args_is_help=True)
app.add_typer(chain_app, name="chain")
app.command("simulate-fleet")(simulate_fleet)
app.command("demo")(demo)
app.command("guide")(guide)

console = Console(stderr=True)


def _sessions(settings: Settings) -> Any:
    engine = make_engine(settings.database_url)
    return session_factory(engine)


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Apply migrations to the database named by DATABASE_URL."""
    settings = Settings()
    upgrade(make_engine(settings.database_url))
    console.print(f"database is up to date: {settings.database_url}")


@keys_app.command("create")
@friendly
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name for the key")],
    role: Annotated[str, typer.Option(help="operator, aggregator, integrator, analyst or owner")],
    subject: Annotated[str | None, typer.Option(help="For owner keys: the owner_name")] = None,
) -> None:
    """Create an API key and print its secret (shown once)."""
    from registry.keys import Role, create_key

    try:
        chosen = Role(role)
    except ValueError:
        raise ValueError(f"--role must be one of {', '.join(r.value for r in Role)}") from None
    with _sessions(Settings()).begin() as session:
        secret = create_key(session, name, chosen, subject)
    typer.echo(secret)


@keys_app.command("revoke")
@friendly
def keys_revoke(name: str) -> None:
    """Revoke an API key by name."""
    from registry.keys import revoke_key

    with _sessions(Settings()).begin() as session:
        if not revoke_key(session, name):
            raise ValueError(f"no active key named {name!r}")
    console.print(f"revoked {name}")


@keys_app.command("dev")
@friendly
def keys_dev(
    owner: Annotated[str, typer.Option(help="owner_name the owner key may see")] = "owner-0001",
) -> None:
    """Write one development key per role to var/dev-keys.json (reusing valid ones)."""
    from registry.keys import ensure_dev_keys

    settings = Settings()
    with _sessions(settings).begin() as session:
        ensure_dev_keys(session, settings.dev_keys_path, owner)
    console.print(f"development API keys (one per role): {settings.dev_keys_path.resolve()}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@registry_app.command("import")
@friendly
def registry_import(
    path: Annotated[Path, typer.Argument(help="CSV with a header of device fields")],
    atomic: Annotated[bool, typer.Option(help="Store nothing if any row is bad")] = False,
    errors_out: Annotated[
        Path | None, typer.Option(help="Write the per-row error report to this JSON file")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Import devices from CSV with a progress bar and a per-row error report."""
    from registry.devices import bulk_create_devices
    from registry.importer import count_rows, read_devices_csv

    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    total = count_rows(path)
    with _sessions(Settings()).begin() as session, _progress() as bar:
        task = bar.add_task(f"importing {path.name}", total=total)
        result = bulk_create_devices(
            session,
            read_devices_csv(path),
            atomic=atomic,
            progress=lambda done: bar.update(task, completed=done),
            chunk=1_000,
        )
    report = [
        {"line": e.row + 2, **{k: v for k, v in e.as_dict().items() if k != "row"}}
        for e in result.errors
    ]
    if errors_out is not None:
        errors_out.write_text(json.dumps(report, indent=2, default=str))
    if as_json:
        typer.echo(
            json.dumps(
                {"rows": result.rows, "created": len(result.created), "errors": report}, default=str
            )
        )
    else:
        console.print(
            f"{len(result.created)} of {result.rows} devices imported, {len(report)} rows refused"
        )
        if report:
            table = Table("line", "field", "problem", "value")
            for entry in report[:50]:
                for problem in entry["problems"]:
                    table.add_row(
                        str(entry["line"]),
                        problem["field"],
                        problem["message"],
                        str(problem.get("value", "")),
                    )
            console.print(table)
            if len(report) > 50:
                console.print(f"... and {len(report) - 50} more rows (see --errors-out)")
    if result.errors and not result.created:
        raise typer.Exit(1)


@app.command("demo-fleet")
@friendly
def demo_fleet(
    devices: Annotated[int, typer.Option(min=1, max=100_000, help="Devices to build")] = 500,
    feeders: Annotated[int, typer.Option(min=1, max=999, help="Feeders to spread them over")] = 8,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    days: Annotated[int, typer.Option(min=0, max=60, help="Days of telemetry history")] = 7,
    if_empty: Annotated[bool, typer.Option(help="Do nothing if the registry has devices")] = False,
) -> None:
    """Build a realistic demo fleet from real data and store it in the registry."""
    from sqlalchemy import func, select

    from registry.demo import build_fleet, seed_demo
    from registry.tables import Device

    settings = Settings()
    sessions = _sessions(settings)
    with sessions() as session:
        if if_empty and (session.scalar(select(func.count()).select_from(Device)) or 0) > 0:
            console.print("registry already has devices; demo fleet not seeded")
            return
        fleet = build_fleet(devices, feeders, seed, days=days)
        with _progress() as bar:
            tasks: dict[str, Any] = {}

            def step(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done)

            report = seed_demo(session, fleet, vtn_url=settings.vtn_url, progress=step)
        session.commit()
    console.print(
        f"demo fleet: {report.devices} devices, {report.programs} programs, "
        f"{report.enrollments} enrolments, {report.readings} readings"
    )


def _timestamp(text: str, option: str) -> Any:
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise ValueError(f"{option}: not an ISO 8601 timestamp: {text!r}") from None
    if stamp.tzinfo is None:
        raise ValueError(f"{option}: needs a UTC offset such as Z or +01:00: {text!r}")
    return stamp.tz_convert("UTC")


def _report_plan(result: Any, out: Path, skipped: list[str], as_json: bool) -> None:
    from api.planning import plan_frame

    plan_frame(result).to_csv(out, index=False)
    summary: dict[str, Any] = {
        "status": result.status,
        "objective": round(result.objective, 6),
        "costs": {k: round(v, 6) for k, v in result.costs.items()},
        "devices": result.power_kw.shape[1],
        "skipped": len(skipped),
        "plan_csv": str(out),
        "requests": [
            {
                "request_id": r.request_id,
                "kind": r.kind,
                "devices_called": len(r.devices_called),
                "shortfall_kwh": round(r.shortfall_kwh, 6),
                "intervals": [
                    {
                        "start": ts.isoformat(),
                        "requested_kw": round(float(r.requested_kw[ts]), 4),
                        "expected_kw": round(float(r.expected_kw[ts]), 4),
                        "shortfall_kw": round(float(r.shortfall_kw[ts]), 4),
                        "marginal_cost_per_kw": None
                        if r.marginal_cost_per_kw.isna()[ts]
                        else round(float(r.marginal_cost_per_kw[ts]), 6),
                        "reasons": r.reasons.get(ts, []),
                    }
                    for ts in r.requested_kw.index
                ],
            }
            for r in result.requests
        ],
        "notes": result.notes,
        "timings_s": {k: round(v, 3) for k, v in result.timings_s.items()},
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    console.print(
        f"plan {result.status}: {summary['devices']} devices, cost {result.objective:,.2f} "
        f"({', '.join(f'{k} {v:,.2f}' for k, v in result.costs.items() if abs(v) > 1e-9)})"
    )
    for request in summary["requests"]:
        table = Table(
            Column("interval", no_wrap=True, min_width=20),
            "requested kW",
            "expected kW",
            "shortfall kW",
            "cost of 1 kW more",
        )
        for row in request["intervals"]:
            marginal = row["marginal_cost_per_kw"]
            table.add_row(
                row["start"],
                f"{row['requested_kw']:,.1f}",
                f"{row['expected_kw']:,.1f}",
                f"{row['shortfall_kw']:,.1f}",
                "-" if marginal is None else f"{marginal:,.4f}",
            )
        console.print(
            f"request {request['request_id']} ({request['kind']}): "
            f"{request['devices_called']} devices called, "
            f"shortfall {request['shortfall_kwh']:,.2f} kWh"
        )
        console.print(table)
        for row in request["intervals"]:
            for reason in row["reasons"]:
                console.print(f"  {row['start']} short because {reason}")
    for note in result.notes:
        console.print(f"note: {note}")
    if skipped:
        console.print(f"{len(skipped)} devices not controllable and left out")
    console.print(f"plan written to {out}")


def _plan(problem: Any, method: str, time_limit: float | None) -> Any:
    from api.compute import plan_auto

    return plan_auto(problem, Settings(), method, time_limit)


METHOD_HELP = (
    "auto (whole LP, or chunks on Dask above DECOMPOSE_ABOVE_DEVICES), arrays, decomposed or pyomo"
)


@optimize_app.command("day-ahead")
@friendly
def optimize_day_ahead(
    fleet: Annotated[
        Path, typer.Option(help="Registry device CSV (with optional planning columns)")
    ],
    prices: Annotated[Path, typer.Option(help="Price CSV: timestamp, price_per_kwh or *_per_mwh")],
    date: Annotated[
        str | None,
        typer.Option(help="UTC day to plan, YYYY-MM-DD (default: first day of the prices)"),
    ] = None,
    resolution: Annotated[str, typer.Option(help="Interval length, e.g. 15min or 1h")] = "15min",
    demand_charge: Annotated[
        float, typer.Option(min=0, help="Per kW of each site's peak import")
    ] = 0.0,
    feeder_capacity_kw: Annotated[
        float | None, typer.Option(min=0, help="Capacity of every feeder [kW]")
    ] = None,
    integer: Annotated[
        bool, typer.Option(help="MILP: contiguous runs, no simultaneous charge/discharge")
    ] = False,
    time_limit: Annotated[float | None, typer.Option(min=0, help="Solver time limit [s]")] = None,
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "auto",
    out: Annotated[Path, typer.Option(help="Where to write the plan CSV")] = Path("plan.csv"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """The cheapest day-ahead schedule of a fleet under prices and a demand charge."""
    import pandas as pd

    from api.planning import prices_for, read_fleet, read_prices
    from optimizer.problem import Horizon, Problem

    step = pd.Timedelta(resolution)
    if date is None:
        first = pd.read_csv(prices, nrows=1).iloc[0, 0] if prices.is_file() else None
        if first is None:
            raise ValueError(f"{prices}: no such file")
        stamp = pd.Timestamp(str(first))
        day = (
            stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        ).normalize()
    else:
        day = _timestamp(f"{date}T00:00:00Z", "--date")
    horizon = Horizon(day, int(pd.Timedelta("1D") / step), step.to_pytimedelta())
    fleet_file = read_fleet(fleet, horizon, feeder_capacity_kw)
    problem = Problem(
        horizon,
        fleet_file.fleet,
        prices=prices_for(read_prices(prices, horizon), demand_charge),
        integer=integer,
    )
    _report_plan(_plan(problem, method, time_limit), out, fleet_file.skipped, as_json)


@optimize_app.command("capacity")
@friendly
def optimize_capacity(
    fleet: Annotated[
        Path, typer.Option(help="Registry device CSV (with optional planning columns)")
    ],
    start: Annotated[str, typer.Option(help="Window start, ISO 8601 with offset")],
    end: Annotated[str, typer.Option(help="Window end, ISO 8601 with offset")],
    feeder: Annotated[str | None, typer.Option(help="Feeder of the request")] = None,
    region: Annotated[
        str | None, typer.Option(help="Region of the request (instead of a feeder)")
    ] = None,
    kw: Annotated[float | None, typer.Option(help="Reduction against the baseline [kW]")] = None,
    cap_kw: Annotated[float | None, typer.Option(help="Ceiling on net load instead [kW]")] = None,
    shortfall_price: Annotated[float, typer.Option(min=0, help="Per kWh short")] = 10.0,
    prices: Annotated[
        Path | None, typer.Option(help="Optional price CSV for the energy cost")
    ] = None,
    resolution: Annotated[str, typer.Option(help="Interval length")] = "15min",
    integer: Annotated[bool, typer.Option(help="MILP formulation")] = False,
    time_limit: Annotated[float | None, typer.Option(min=0, help="Solver time limit [s]")] = None,
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "auto",
    out: Annotated[Path, typer.Option(help="Where to write the plan CSV")] = Path("plan.csv"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Plan a grid operator's capacity request on a feeder or region."""
    import pandas as pd

    from api.planning import prices_for, read_fleet, read_prices
    from optimizer.problem import CapacityRequest, Horizon, Problem

    begin = _timestamp(start, "--start")
    finish = _timestamp(end, "--end")
    step = pd.Timedelta(resolution)
    day = begin.normalize()
    days = max(
        1,
        int((finish - day) / pd.Timedelta("1D"))
        + (1 if (finish - day) % pd.Timedelta("1D") else 0),
    )
    horizon = Horizon(day, int(days * pd.Timedelta("1D") / step), step.to_pytimedelta())
    request = CapacityRequest(
        "cli",
        begin,
        finish,
        feeder=feeder,
        region=region,
        kw=kw,
        cap_kw=cap_kw,
        shortfall_price_per_kwh=shortfall_price,
    )
    fleet_file = read_fleet(fleet, horizon)
    price_frame = prices_for(read_prices(prices, horizon)) if prices is not None else None
    problem = Problem(
        horizon, fleet_file.fleet, prices=price_frame, requests=(request,), integer=integer
    )
    _report_plan(_plan(problem, method, time_limit), out, fleet_file.skipped, as_json)


@chain_app.command("deploy")
@friendly
def chain_deploy(
    rpc_url: Annotated[
        str | None, typer.Option(help="EVM JSON-RPC URL (default: CHAIN_RPC_URL)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the addresses as JSON")] = False,
) -> None:
    """Compile (or take from the cache) and deploy the token, device registry and reward
    distributor, and save their addresses in VAR_DIR/chain-deployment.json."""
    from api.chain import connect, deploy

    settings = Settings()
    if rpc_url:
        settings = settings.model_copy(update={"chain_rpc_url": rpc_url})
    if not settings.chain_rpc_url:
        raise ValueError(
            "CHAIN_RPC_URL: not set; the embedded EVM lives inside the service, which "
            "deploys there itself. Give --rpc-url or CHAIN_RPC_URL for a node."
        )
    deployment = deploy(settings, connect(settings))
    if as_json:
        typer.echo(json.dumps(deployment.as_dict()))
        return
    console.print(f"deployed on chain {deployment.chain_id} (block {deployment.block}):")
    for name in ("token", "registry", "distributor"):
        console.print(f"  {name:<12} {getattr(deployment, name)}")
    console.print(f"saved in {settings.chain_deployment_path}")


@chain_app.command("status")
@friendly
def chain_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Check the saved deployment against the node: chain id and contract code."""
    from api.chain import open_chain

    chain = open_chain(Settings())
    status = {
        **chain.deployment.as_dict(),
        "block_now": chain.w3.eth.block_number,
        "token_supply": int(chain.token.functions.totalSupply().call()),
        "devices": int(chain.registry.functions.device_count().call()),
    }
    if as_json:
        typer.echo(json.dumps(status))
        return
    for key, value in status.items():
        console.print(f"{key:<14} {value}")


@app.command("serve")
@friendly
def serve(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port")] = 8000,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) until stopped."""
    import uvicorn

    console.print(f"OpenVPP API on http://{host}:{port} (docs: http://{host}:{port}/docs)")
    uvicorn.run("api.main:create_app", factory=True, host=host, port=port)


def main() -> None:
    app()
