"""``vpp simulate-fleet``: enrolled devices as real OpenADR VENs, driven by device models."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import select

from api.cli_support import friendly
from api.settings import Settings
from registry.db import make_engine, session_factory

console = Console(stderr=True)


def enrolled_devices(
    settings: Settings, devices: int
) -> list[tuple[str, str, float, float | None]]:
    """(VEN id, device type, p_max_kw, e_max_kwh) of ``devices`` devices with an open
    enrolment, in VEN id order."""
    from registry.tables import Device, Enrollment

    sessions = session_factory(make_engine(settings.database_url))
    with sessions() as session:
        rows = session.execute(
            select(Enrollment.ven_id, Device.device_type, Device.p_max_kw, Device.e_max_kwh)
            .join(Device, Device.device_id == Enrollment.device_id)
            .where(Enrollment.ended_at.is_(None))
            .distinct()
            .order_by(Enrollment.ven_id)
            .limit(devices)
        ).all()
    return [(str(v), str(t), float(p), e) for v, t, p, e in rows]


async def _run(
    rows: list[tuple[str, str, float, float | None]],
    vtn_url: str,
    behaviour: Any,
    seed: int,
    report_interval_s: float,
    duration_s: float | None,
    wait_s: float,
) -> dict[str, Any]:
    from dispatch.simulator import SimulatedVen, household_shape, model_for, start_fleet, stop_fleet

    rng = random.Random(seed)
    shapes = [household_shape(seed=seed + k) for k in range(8)]
    vens = [
        SimulatedVen(
            ven_id,
            vtn_url,
            model_for(kind, p_max, e_max, rng, shapes),
            behaviour=behaviour,
            rng=random.Random(f"{seed}-{ven_id}"),
            report_interval_s=report_interval_s,
        )
        for ven_id, kind, p_max, e_max in rows
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await start_fleet(vens, wait_s=wait_s)
        online = sum(v.online for v in vens)
        console.print(
            f"{online} of {len(vens)} VENs online at {vtn_url} "
            f"({sum(v.offline for v in vens)} offline by design); Ctrl-C stops"
        )
        with contextlib.suppress(TimeoutError):  # the duration is up
            await asyncio.wait_for(stop.wait(), timeout=duration_s)
    finally:
        await stop_fleet(vens)
    answers = [a for v in vens for a in v.answers.values()]
    return {
        "vens": len(vens),
        "online": online,
        "events": len(answers),
        "opt_ins": answers.count("optIn"),
        "opt_outs": answers.count("optOut"),
    }


@friendly
def simulate_fleet(
    devices: Annotated[int, typer.Option(min=1, help="Enrolled devices to simulate")] = 20,
    vtn_url: Annotated[str | None, typer.Option(help="VTN URL (default: VTN_URL)")] = None,
    opt_out: Annotated[float, typer.Option(min=0, max=1, help="Share of events refused")] = 0.0,
    offline: Annotated[float, typer.Option(min=0, max=1, help="Share of VENs never online")] = 0.0,
    partial: Annotated[
        float, typer.Option(min=0, max=1, help="Share of the asked change delivered")
    ] = 1.0,
    delay_s: Annotated[float, typer.Option(min=0, help="Seconds late on each setpoint")] = 0.0,
    report_interval_s: Annotated[
        float, typer.Option(min=1, help="Real-power report sampling [s]")
    ] = 10.0,
    duration_s: Annotated[
        float | None, typer.Option(min=1, help="Stop after this many seconds")
    ] = None,
    wait_s: Annotated[
        float, typer.Option(min=0, help="Keep trying to reach the VTN for this long [s]")
    ] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed of every random choice")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Run enrolled devices as real OpenADR 2.0b VENs (openleadr clients) that follow the
    events they opt into through battery, EV and household-load models, and report
    real power, with the misbehaviour asked for."""
    from dispatch.simulator import Misbehaviour

    settings = Settings()
    rows = enrolled_devices(settings, devices)
    if len(rows) < devices:
        raise ValueError(
            f"--devices: {devices} asked, but only {len(rows)} devices have an open "
            "enrolment (enrol more, or ask for fewer)"
        )
    behaviour = Misbehaviour(opt_out=opt_out, offline=offline, partial=partial, delay_s=delay_s)
    summary = asyncio.run(
        _run(
            rows,
            vtn_url or settings.vtn_url,
            behaviour,
            seed,
            report_interval_s,
            duration_s,
            wait_s,
        )
    )
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        console.print(
            f"{summary['online']} VENs ran; {summary['events']} events: "
            f"{summary['opt_ins']} opted in, {summary['opt_outs']} opted out"
        )
