"""Where the optimizer's parallel parts run: a Dask cluster, local by default.

``DASK_SCHEDULER_ADDRESS`` names a running scheduler (``tcp://host:8786``) for a real
cluster; without it a LocalCluster of ``DASK_WORKERS`` single-threaded worker
processes starts for the job and stops after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from api.settings import Settings
from optimizer.decompose import MapFunction
from optimizer.problem import Problem
from optimizer.results import Plan, plan


@contextmanager
def chunk_map(settings: Settings) -> Iterator[MapFunction]:
    """A ``map_function`` for :func:`optimizer.results.plan` backed by Dask."""
    from distributed import Client, LocalCluster

    cluster = None
    if settings.dask_scheduler_address:
        client = Client(settings.dask_scheduler_address)
    else:
        cluster = LocalCluster(
            n_workers=settings.dask_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        )
        client = Client(cluster)

    def run(function: Callable[[Any], Any], items: Sequence[Any]) -> Iterable[Any]:
        return list(client.gather(client.map(function, items, pure=False)))

    try:
        yield run
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def plan_auto(
    problem: Problem, settings: Settings, method: str = "auto", time_limit_s: float | None = None
) -> Plan:
    """Plan with the method asked for; ``auto`` plans an LP fleet larger than
    ``DECOMPOSE_ABOVE_DEVICES`` by chunks on Dask and any other as one problem."""
    if method == "auto":
        large = len(problem.fleet.devices()) > settings.decompose_above_devices
        method = "decomposed" if large and not problem.integer else "arrays"
    if method == "decomposed":
        with chunk_map(settings) as mapper:
            return plan(problem, method="decomposed", map_function=mapper)
    return plan(problem, method=method, time_limit_s=time_limit_s)  # type: ignore[arg-type]
