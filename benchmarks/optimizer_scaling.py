"""Optimizer scaling: plan reproducible fleets of growing size and print figures.

One JSON line per size with ``devices``, ``intervals``, ``variables``,
``constraints``, ``build_s``, ``solve_s``, ``total_s``, ``peak_rss_mb`` and
``objective`` for the fleet path (``--method decomposed``, the default; ``arrays`` and
``pyomo`` plan the whole LP at once), and with ``--compare-monolithic`` (sizes up to
3,000) ``monolithic_objective``, ``monolithic_total_s`` and ``gap`` =
(objective - monolithic) / |monolithic|, the monolithic plan being the whole LP on the
array path (the same optimum as the Pyomo model, see tests/optimizer/test_formulations.py).

Each size runs in a fresh process, so that ``peak_rss_mb`` is that size's own.
Chunks are solved on ``--threads`` threads in the process (the machine's cores by
default); ``--workers N`` sends them to a Dask LocalCluster of N single-threaded
workers instead. ``--time-limit`` bounds the correction rounds that follow the first
pass. The line also gives ``chunks``, ``shapes`` (distinct chunk matrices), ``rounds``
(correction rounds run), ``first_pass_s``, ``cpu_s`` (the process's CPU time while it
plans) and ``steal_share`` (the share of the machine's CPU time its host took for others
meanwhile, from ``/proc/stat``; ``null`` elsewhere): figures from a busy host are slower
for reasons outside the code.

Usage::

    python benchmarks/optimizer_scaling.py --devices 100 1000 3000 10000 100000 \\
        [--compare-monolithic] [--json] [--method decomposed] [--workers 2] \\
        [--threads 2] [--time-limit 60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MONOLITHIC_LIMIT = 3_000


def cpu_ticks() -> tuple[int, int] | None:
    """The machine's (steal, total) CPU ticks so far, where ``/proc/stat`` tells them."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]
    return ticks[7], sum(ticks)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(
    devices: int,
    method: str,
    compare: bool,
    workers: int,
    seed: int,
    threads: int = 0,
    time_limit: float | None = None,
) -> dict[str, Any]:
    from benchmarks.scaling_fleet import scaling_problem
    from optimizer.results import plan

    problem = scaling_problem(devices, seed)
    mapper = None
    cluster = client = None
    if workers > 0 and method == "decomposed":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        )
        client = Client(cluster)

        def mapper(function: Any, items: Any) -> Any:
            return client.gather(client.map(function, items, pure=False))

    try:
        ticks, cpu = cpu_ticks(), cpu_seconds()
        started = time.perf_counter()
        result = plan(
            problem,
            method=method,  # type: ignore[arg-type]
            map_function=mapper,
            threads=threads or None,
            time_limit_s=time_limit,
        )
        total = time.perf_counter() - started
        cpu = cpu_seconds() - cpu
        after = cpu_ticks()
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    timings = result.timings_s
    build = (
        timings.get("build_s", 0.0)
        + timings.get("chunk_build_s", 0.0)
        + timings.get("prepare_s", 0.0)
    )
    solve = timings.get("solve_s", 0.0) + timings.get("chunk_solve_s", 0.0)
    line: dict[str, Any] = {
        "devices": devices,
        "intervals": problem.horizon.intervals,
        "method": method,
        "variables": result.size.get("variables"),
        "constraints": result.size.get("constraints"),
        "chunks": result.size.get("chunks"),
        "shapes": result.size.get("shapes"),
        "rounds": timings.get("rounds"),
        "first_pass_s": round(timings.get("first_pass_s", 0.0), 3),
        "build_s": round(build, 3),
        "solve_s": round(solve, 3),
        "total_s": round(total, 3),
        "objective": round(result.objective, 6),
        "shortfall_kwh": round(sum(r.shortfall_kwh for r in result.requests), 6),
        "cpu_s": round(cpu, 3),
        "steal_share": None
        if ticks is None or after is None or after[1] == ticks[1]
        else round((after[0] - ticks[0]) / (after[1] - ticks[1]), 4),
    }
    if compare and devices <= MONOLITHIC_LIMIT:
        started = time.perf_counter()
        whole = plan(problem, method="arrays")
        line["monolithic_total_s"] = round(time.perf_counter() - started, 3)
        line["monolithic_objective"] = round(whole.objective, 6)
        line["gap"] = (result.objective - whole.objective) / abs(whole.objective)
    line["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--method", default="decomposed", choices=["decomposed", "arrays", "pyomo"])
    parser.add_argument("--compare-monolithic", action="store_true")
    parser.add_argument("--workers", type=int, default=0, help="Dask workers (0: in process)")
    parser.add_argument("--threads", type=int, default=0, help="threads (0: the cores)")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="seconds; bounds correction rounds"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="JSON lines only")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        [devices] = args.devices
        line = measure(
            devices,
            args.method,
            args.compare_monolithic,
            args.workers,
            args.seed,
            args.threads,
            args.time_limit,
        )
        print(json.dumps(line), flush=True)
        return
    root = Path(__file__).resolve().parents[1]
    for devices in args.devices:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--one",
            "--devices",
            str(devices),
            "--method",
            args.method,
            "--workers",
            str(args.workers),
            "--seed",
            str(args.seed),
            "--threads",
            str(args.threads),
        ]
        if args.time_limit is not None:
            command += ["--time-limit", str(args.time_limit)]
        if args.compare_monolithic:
            command.append("--compare-monolithic")
        done = subprocess.run(
            command,
            cwd=root,
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(root), **os.environ},
        )
        if done.returncode != 0:
            print(json.dumps({"devices": devices, "error": done.stderr.strip().splitlines()[-1:]}))
            continue
        line = json.loads(done.stdout.strip().splitlines()[-1])
        if args.json:
            print(json.dumps(line), flush=True)
        else:
            gap = f", gap {line['gap']:.2%}" if "gap" in line else ""
            print(
                f"{devices:>7} devices: {line['total_s']:8.2f} s total "
                f"(build {line['build_s']:.2f} s, solve {line['solve_s']:.2f} s), "
                f"{line['peak_rss_mb']:.0f} MB, objective {line['objective']:.2f}{gap}",
                flush=True,
            )


if __name__ == "__main__":
    main()
