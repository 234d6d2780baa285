"""Real series for forecasting tests (copied with provenance in registry/data/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.series import LoadedSeries, read_csv

DATA = Path(__file__).resolve().parents[2] / "registry" / "data"
UCI = DATA / "uci_household_power_hourly.csv.gz"
PVWATTS = DATA / "nrel_pvwatts_8760_rackmount_golden_co.csv.gz"


@pytest.fixture(scope="session")
def household() -> LoadedSeries:
    """UCI household load, hourly, Sceaux (France), 2006-12 to 2010-11 [kW]."""
    return read_csv(UCI, "timestamp_local", "Global_active_power")
