"""``vpp simulate-fleet``: enrolled devices as real OpenADR VENs, driven by device models."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
from pathlib import Path
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


def signed_mode(
    certs: Path | None, vtn_fingerprint: str | None, ven_ids: list[str]
) -> tuple[Any, str] | tuple[None, None]:
    """The development PKI of ``certs`` (``vpp certs dev``), checked to hold a
    certificate for every VEN, and the VTN fingerprint (given, or of its ``vtn.pem``)."""
    from dispatch.certs import DevPki

    if certs is None:
        if vtn_fingerprint is not None:
            raise ValueError("--vtn-fingerprint: only with --certs (signed mode)")
        return None, None
    pki = DevPki(certs)
    if not pki.ca_path.is_file():
        raise ValueError(f"--certs: no CA certificate at {pki.ca_path} (make one: vpp certs dev)")
    lacking = [v for v in ven_ids if not pki.ven(v).cert_path.is_file()]
    if lacking:
        raise ValueError(
            f"--certs: no certificate for {len(lacking)} VENs in {certs / 'vens'}, "
            f"such as {lacking[0]} (vpp certs dev --out {certs} --vens {len(ven_ids)})"
        )
    if vtn_fingerprint is None:
        if not pki.vtn.cert_path.is_file():
            raise ValueError(
                f"--vtn-fingerprint: needed, no VTN certificate at {pki.vtn.cert_path}"
            )
        vtn_fingerprint = pki.vtn.fingerprint
    return pki, vtn_fingerprint


async def _run(
    rows: list[tuple[str, str, float, float | None]],
    vtn_url: str,
    behaviour: Any,
    seed: int,
    report_interval_s: float,
    duration_s: float | None,
    wait_s: float,
    pki: Any = None,
    vtn_fingerprint: str | None = None,
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
            credentials=pki.ven(ven_id) if pki is not None else None,
            vtn_fingerprint=vtn_fingerprint,
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
    certs: Annotated[
        Path | None,
        typer.Option(
            help="Signed mode: folder made by `vpp certs dev` (CA, VTN and one certificate "
            "per VEN); the VTN must run in signed mode with its files"
        ),
    ] = None,
    vtn_fingerprint: Annotated[
        str | None,
        typer.Option(
            help="Signed mode: the VTN's certificate fingerprint (default: of CERTS/vtn.pem)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Run enrolled devices as real OpenADR 2.0b VENs (openleadr clients) that follow the
    events they opt into through battery, EV and household-load models, and report
    real power, with the misbehaviour asked for. With --certs they connect over HTTPS
    with their own certificates and sign every message (signed mode)."""
    from dispatch.simulator import Misbehaviour

    settings = Settings()
    rows = enrolled_devices(settings, devices)
    if len(rows) < devices:
        raise ValueError(
            f"--devices: {devices} asked, but only {len(rows)} devices have an open "
            "enrolment (enrol more, or ask for fewer)"
        )
    pki, fingerprint = signed_mode(certs, vtn_fingerprint, [row[0] for row in rows])
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
            pki,
            fingerprint,
        )
    )
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        console.print(
            f"{summary['online']} VENs ran; {summary['events']} events: "
            f"{summary['opt_ins']} opted in, {summary['opt_outs']} opted out"
        )
