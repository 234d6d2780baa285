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
