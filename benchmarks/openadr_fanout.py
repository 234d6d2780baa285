"""OpenADR fan-out: one VTN, many real openleadr VENs in a second process, over loopback.

Starts the service's VTN (:class:`dispatch.vtn.Vtn`) in this process and ``--vens``
openleadr VEN clients in another, polling every ``--poll-interval`` seconds. Once all
have registered, sends each an event and measures how long until the last VEN has it,
then waits for every answer. Prints one JSON object (``--json``) with ``vens``,
``poll_interval_s``, ``registration_s`` (all VENs registered, timed in their process),
``event_all_received_s`` (from the first event's creation until the last VEN has its
event), ``event_latency_max_s`` (the longest a VEN waited for its event after it was
created), ``opt_ins``, ``vtn_cpu_frac`` (CPU time of the VTN's process over wall time
while all VENs poll with nothing new, for two poll intervals after the answers),
``vtn_cpu_frac_dispatch`` (the same from the first registration to the last answer),
``ven_cpu_frac_event`` (the same for the process of all the VENs, from their
registration until the last has its event; all of them share one process, which a busy
machine makes late to poll) and ``signed``.

With ``--signed`` the VTN runs in signed mode (HTTPS with client certificates, every
message signed both ways, fingerprints checked) and each VEN has its own certificate from
a development CA, made in ``--pki`` (reused when there). Every party signs with its key
parsed once (:mod:`dispatch.signing`). ``sign_ms`` and ``verify_ms`` are then the cost
of signing and of checking one poll message in this process.

Usage::

    python benchmarks/openadr_fanout.py --vens 1000 --poll-interval 10 --json
    python benchmarks/openadr_fanout.py --vens 1000 --poll-interval 10 --signed --json
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
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _names(vens: int) -> list[str]:
    return [f"ven-{i:05d}" for i in range(vens)]


async def ven_side(
    vens: int, url: str, timeout_s: float, pki: Path | None, vtn_fingerprint: str | None
) -> None:
    """The VEN process: register every VEN (they poll as often as the VTN asks), then
    report when all have an event."""
    from openleadr import OpenADRClient

    from dispatch.certs import DevPki
    from dispatch.signing import Signer, use_signer, ven_options
    from dispatch.simulator import run_late_polls

    logging.getLogger("openleadr").setLevel(logging.WARNING)  # after the import: it sets INFO
    received: dict[str, float] = {}
    clients = []
    for name in _names(vens):
        if pki is not None and vtn_fingerprint is not None:
            credentials = DevPki(pki).ven(name)
            client = OpenADRClient(
                ven_name=name, vtn_url=url, **ven_options(credentials, vtn_fingerprint)
            )
            use_signer(client, Signer(credentials.cert_path, credentials.key_path))
        else:
            client = OpenADRClient(ven_name=name, vtn_url=url, disable_signature=True)
        # A thousand VENs share this process: a poll runs late rather than not at all.
        run_late_polls(client)

        async def on_event(event: dict[str, Any], name: str = name) -> str:
            received.setdefault(name, time.time())
            return "optIn"

        client.add_handler("on_event", on_event)
        clients.append(client)
    print(json.dumps({"ready": len(clients)}), flush=True)
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
    cpu, wall = time.process_time(), time.perf_counter()
    while len(received) < registered and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print(
        json.dumps(
            {
                "ven_cpu_frac": (time.process_time() - cpu) / (time.perf_counter() - wall),
                "received": len(received),
                "last_at": max(received.values(), default=0),
                "at": received,
            }
        ),
        flush=True,
    )
    # Stay up (polling, so that answers flow) until the VTN's side closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.gather(*(c.stop() for c in clients))


def _sign_costs(pki: Path, ven_id: str, count: int = 200) -> dict[str, float]:
    """Milliseconds to sign one poll message as openleadr does (``sign_ms_openleadr``,
    parsing the key per message) and with the key parsed once (``sign_ms``), and to
    check one (``verify_ms``: schema, signature and certificate fingerprint)."""
    from openleadr.messaging import create_message, validate_xml_schema, validate_xml_signature

    from dispatch.certs import DevPki
    from dispatch.signing import Signer

    credentials = DevPki(pki).ven(ven_id)
    signer = Signer(credentials.cert_path, credentials.key_path)
    started = time.perf_counter()
    messages = [signer.create_message("oadrPoll", ven_id=ven_id) for _ in range(count)]
    sign_ms = (time.perf_counter() - started) / count * 1e3
    started = time.perf_counter()
    for message in messages:
        tree = validate_xml_schema(message)
        validate_xml_signature(tree, cert_fingerprint=signer.fingerprint)
    verify_ms = (time.perf_counter() - started) / count * 1e3
    cert, key = credentials.cert_path.read_bytes(), credentials.key_path.read_bytes()
    started = time.perf_counter()
    for _ in range(count // 10):
        create_message("oadrPoll", cert=cert, key=key, ven_id=ven_id)
    upstream_ms = (time.perf_counter() - started) / (count // 10) * 1e3
    return {
        "sign_ms_openleadr": round(upstream_ms, 3),
        "sign_ms": round(sign_ms, 3),
        "verify_ms": round(verify_ms, 3),
    }


async def vtn_side(vens: int, poll_s: float, timeout_s: float, pki: Path | None) -> dict[str, Any]:
    from dispatch.certs import dev_pki
    from dispatch.vtn import Vtn

    names = set(_names(vens))
    signed: dict[str, Any] = {}
    extra: list[str] = []
    if pki is not None:
        made = time.perf_counter()
        folder = dev_pki(pki, sorted(names))
        pki_s = time.perf_counter() - made
        fingerprints = {name: folder.ven(name).fingerprint for name in names}
        costs = _sign_costs(pki, min(names))
        signed = {
            "credentials": folder.vtn,
            "fingerprint_lookup": fingerprints.get,
        }
    vtn = Vtn(
        lambda name: name if name in names else None,
        port=_free_port(),
        poll_interval_s=poll_s,
        **signed,
    )
    if vtn.fingerprint is not None and pki is not None:
        extra = ["--pki", str(pki), "--vtn-fingerprint", vtn.fingerprint]
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
        *extra,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), **os.environ},
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        await child.stdout.readline()  # the VENs are built (keys parsed): registering
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        registered = json.loads(await child.stdout.readline())
        start = datetime.now(UTC) + timedelta(minutes=5)
        created = time.time()
        created_at = {}
        for name in _names(vens):
            vtn.send_setpoints(name, start, timedelta(minutes=15), [-1.0])
            created_at[name] = time.time()
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
    result: dict[str, Any] = {
        "vens": vens,
        "poll_interval_s": poll_s,
        "registered": registered["registered"],
        "registration_s": round(registered["registration_s"], 3),
        "event_all_received_s": round(got["last_at"] - created, 3) if got["received"] else None,
        "received": got["received"],
        "event_latency_max_s": round(
            max((at - created_at[name] for name, at in got["at"].items()), default=0.0), 3
        ),
        "opt_ins": sum(r.opt_type == "optIn" for r in vtn.responses),
        "vtn_cpu_frac": round(idle, 4),
        "vtn_cpu_frac_dispatch": round(cpu / wall, 4),
        "ven_cpu_frac_event": round(got["ven_cpu_frac"], 4),
        "signed": pki is not None,
    }
    if pki is not None:
        result |= {"pki_s": round(pki_s, 1), **costs}
    return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vens", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per phase")
    parser.add_argument(
        "--signed", action="store_true", help="signed mode: HTTPS, client certificates, XMLDSig"
    )
    parser.add_argument(
        "--pki",
        type=Path,
        help="folder of the development CA and certificates (default: a temporary folder)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--ven-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--vtn-fingerprint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vens < 1:
        parser.error(f"--vens: at least 1, not {args.vens}")
    if args.ven_side:
        asyncio.run(ven_side(args.vens, args.url, args.timeout, args.pki, args.vtn_fingerprint))
        return
    if args.pki is not None and not args.signed:
        parser.error("--pki: only with --signed")
    with tempfile.TemporaryDirectory(prefix="openadr-pki-") as scratch:
        pki = (args.pki or Path(scratch)) if args.signed else None
        result = asyncio.run(vtn_side(args.vens, args.poll_interval, args.timeout, pki))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<22} {value}")


if __name__ == "__main__":
    main()
