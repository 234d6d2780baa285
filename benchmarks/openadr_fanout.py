"""OpenADR fan-out: one VTN, many real openleadr VENs in a second process, over loopback.

Starts the service's VTN (:class:`dispatch.vtn.Vtn`) in this process and ``--vens``
openleadr VEN clients in another, polling every ``--poll-interval`` seconds. Once all
have registered, sends each an event and measures how long until the last VEN has it,
then waits for every answer. Prints one JSON object (``--json``) with ``vens``,
``poll_interval_s``, ``registration_s`` (all VENs registered, timed in their process),
``event_all_received_s`` (from the first event's creation until the last VEN has its
event), ``opt_ins``, ``vtn_cpu_frac`` (CPU time of the VTN's process over wall time
while all VENs poll with nothing new, for two poll intervals after the answers),
``vtn_cpu_frac_dispatch`` (the same from the first registration to the last answer)
and ``signed`` (message signatures; not wired yet, so ``--signed`` is refused).

Usage::

    python benchmarks/openadr_fanout.py --vens 1000 --poll-interval 10 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


async def ven_side(vens: int, url: str, timeout_s: float) -> None:
    """The VEN process: register every VEN (they poll as often as the VTN asks), then
    report when all have an event."""
    from openleadr import OpenADRClient

    logging.getLogger("openleadr").setLevel(logging.WARNING)  # after the import: it sets INFO
    received: dict[str, float] = {}
    clients = []
    for i in range(vens):
        name = f"ven-{i:05d}"
        client = OpenADRClient(ven_name=name, vtn_url=url, disable_signature=True)

        async def on_event(event: dict[str, Any], name: str = name) -> str:
            received.setdefault(name, time.time())
            return "optIn"

        client.add_handler("on_event", on_event)
        clients.append(client)
    started = time.perf_counter()
    gate = asyncio.Semaphore(100)

    async def run(client: Any) -> None:
        async with gate:
            await client.run()

    await asyncio.gather(*(run(c) for c in clients))
    registered = sum(c.registration_id is not None for c in clients)
    print(
        json.dumps({"registered": registered, "registration_s": time.perf_counter() - started}),
        flush=True,
    )
    deadline = time.monotonic() + timeout_s
    while len(received) < registered and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print(
        json.dumps({"received": len(received), "last_at": max(received.values(), default=0)}),
        flush=True,
    )
    # Stay up (polling, so that answers flow) until the VTN's side closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.gather(*(c.stop() for c in clients))


async def vtn_side(vens: int, poll_s: float, timeout_s: float) -> dict[str, Any]:
    from dispatch.vtn import Vtn

    names = {f"ven-{i:05d}" for i in range(vens)}
    vtn = Vtn(
        lambda name: name if name in names else None, port=_free_port(), poll_interval_s=poll_s
    )
    with contextlib.redirect_stdout(sys.stderr):  # openleadr prints a banner
        await vtn.start()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--ven-side",
        "--vens",
        str(vens),
        "--url",
        vtn.url,
        "--timeout",
        str(timeout_s),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), **os.environ},
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        registered = json.loads(await child.stdout.readline())
        start = datetime.now(UTC) + timedelta(minutes=5)
        created = time.time()
        for i in range(vens):
            vtn.send_setpoints(f"ven-{i:05d}", start, timedelta(minutes=15), [-1.0])
        got = json.loads(await child.stdout.readline())
        deadline = time.monotonic() + timeout_s
        while len(vtn.responses) < got["received"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        # Steady state: every VEN polling, nothing to send, for two poll intervals.
        idle_cpu, idle_wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(2 * poll_s)
        idle = (time.process_time() - idle_cpu) / (time.perf_counter() - idle_wall)
    finally:
        child.stdin.close()
        await child.wait()
        await vtn.stop()
    return {
        "vens": vens,
        "poll_interval_s": poll_s,
        "registered": registered["registered"],
        "registration_s": round(registered["registration_s"], 3),
        "event_all_received_s": round(got["last_at"] - created, 3) if got["received"] else None,
        "received": got["received"],
        "opt_ins": sum(r.opt_type == "optIn" for r in vtn.responses),
        "vtn_cpu_frac": round(idle, 4),
        "vtn_cpu_frac_dispatch": round(cpu / wall, 4),
        "signed": False,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vens", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per phase")
    parser.add_argument("--signed", action="store_true", help="signed messages (not wired)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--ven-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ven_side:
        asyncio.run(ven_side(args.vens, args.url, args.timeout))
        return
    if args.signed:
        parser.error("--signed: signed messages are not wired into the VTN yet")
    result = asyncio.run(vtn_side(args.vens, args.poll_interval, args.timeout))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<22} {value}")


if __name__ == "__main__":
    main()
