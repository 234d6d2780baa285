"""Problems the optimizer answers, and the checks that refuse bad input.

- A **capacity request**: reduce the net load of a feeder or region by ``kw`` against
  its baseline over a window (or cap it at ``cap_kw``), with a price for shortfall.
- A **day-ahead schedule**: the cheapest plan under import and export prices and a
  demand charge on each site's peak, honouring accepted capacity commitments.

Both are a :class:`Problem`; a request is a :class:`CapacityRequest` whichever way it
came (asked now or committed before).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from optimizer.devices import (
    Battery,
    CurtailableLoad,
    ElectricVehicle,
    Fleet,
    HeatPump,
    PhotovoltaicSystem,
    Series,
    ShiftableLoad,
)

Report = Callable[[str, str, str], None]


@dataclass(frozen=True)
class Horizon:
    """``intervals`` steps of ``resolution`` from ``start`` (UTC)."""

    start: pd.Timestamp
    intervals: int
    resolution: timedelta = timedelta(minutes=15)

    @property
    def step_h(self) -> float:
        """Interval length [h]."""
        return self.resolution.total_seconds() / 3600

    @property
    def end(self) -> pd.Timestamp:
        return self.start + self.intervals * self.resolution

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.intervals, freq=self.resolution)

    def position(self, at: pd.Timestamp) -> float:
        """Where ``at`` falls, in intervals from the start (may be fractional or outside)."""
        at = at if isinstance(at, pd.Timestamp) else pd.Timestamp(at)
        start = pd.Timestamp(self.start)
        if (at.tzinfo is None) != (start.tzinfo is None):
            raise TypeError("cannot compare a timezone-aware and a naive time")
        # Nanoseconds since the epoch (UTC when aware): a hundred times faster than
        # subtracting Timestamps, which counts when a fleet has 100,000 windows.
        return (at.value - start.value) / (self.resolution.total_seconds() * 1e9)


@dataclass(frozen=True)
class CapacityRequest:
    """A grid operator's request on a feeder or a region.

    Exactly one of ``kw`` (reduction against the baseline, >= 0) and ``cap_kw`` (a
    ceiling on net load: one value, or one per interval of the window) is given.
    Intervals of the window where the expected delivery falls short are paid at
    ``shortfall_price_per_kwh``.
    """

    request_id: str
    start: pd.Timestamp
    end: pd.Timestamp
    feeder: str | None = None
    region: str | None = None
    kw: float | None = None
    cap_kw: float | tuple[float, ...] | None = None
    shortfall_price_per_kwh: float = 10.0


@dataclass(frozen=True)
class Prices:
    """Energy prices per interval [currency/kWh] and a demand charge [currency/kW].

    The demand charge applies to each site's highest import over the horizon.
    """

    import_price_per_kwh: Series
    export_price_per_kwh: Series | None = None
    demand_charge_per_kw: float = 0.0


@dataclass(frozen=True)
class Problem:
    """Everything the optimizer needs: a horizon, a fleet, prices and requests.

    ``integer`` chooses the MILP formulation (contiguous shiftable runs, no
    simultaneous charge and discharge of batteries); the default LP relaxes both.
    """

    horizon: Horizon
    fleet: Fleet
    prices: Prices | None = None
    requests: tuple[CapacityRequest, ...] = ()
    integer: bool = False
    limit_violation_cost_per_kwh: float = 1_000.0
    name: str = "plan"
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InputProblem:
    """One thing wrong with a problem: the object, the field, and what is wrong."""

    subject: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.field}: {self.message}"


class ProblemError(ValueError):
    """The problem cannot be planned as given; every reason is listed."""

    def __init__(self, problems: Sequence[InputProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def series(values: Series | None, horizon: Horizon, default: float = 0.0) -> np.ndarray:
    """One float per interval of the horizon, from a Series (aligned on the index) or
    a sequence; ``None`` gives ``default`` everywhere."""
    if values is None:
        return np.full(horizon.intervals, float(default))
    if isinstance(values, pd.Series) and isinstance(values.index, pd.DatetimeIndex):
        aligned = values.reindex(horizon.index)
        return aligned.to_numpy(dtype=float)
    array = np.asarray(values, dtype=float)
    return array


def validate(problem: Problem) -> None:
    """Refuse bad input with every reason, naming the device and the field.

    Raises
    ------
    ProblemError
    """
    found: list[InputProblem] = []

    def bad(subject: str, name: str, message: str) -> None:
        found.append(InputProblem(subject, name, message))

    horizon = problem.horizon
    if horizon.intervals < 1:
        bad("horizon", "intervals", "must be at least 1")
    if horizon.resolution <= timedelta(0):
        bad("horizon", "resolution", "must be positive")
    if found:
        raise ProblemError(found)

    fleet = problem.fleet
    feeders = {f.feeder_id for f in fleet.feeders}
    regions = {f.region for f in fleet.feeders if f.region}
    sites = {}
    for site in fleet.sites:
        if site.site_id in sites:
            bad(f"site {site.site_id}", "site_id", "appears twice")
        sites[site.site_id] = site
        if not site.feeder:
            bad(f"site {site.site_id}", "feeder", "is required")
        elif fleet.feeders and site.feeder not in feeders:
            bad(f"site {site.site_id}", "feeder", f"{site.feeder!r} is not a feeder of the fleet")
        for name in ("import_max_kw", "export_max_kw"):
            value = getattr(site, name)
            if value is not None and not value >= 0:
                bad(f"site {site.site_id}", name, f"must be >= 0 kW, got {value}")
        _check_series(bad, f"site {site.site_id}", "base_load_kw", site.base_load_kw, horizon)
    for feeder in fleet.feeders:
        for name in ("import_max_kw", "export_max_kw"):
            value = getattr(feeder, name)
            if value is not None and not value >= 0:
                bad(f"feeder {feeder.feeder_id}", name, f"must be >= 0 kW, got {value}")

    seen: set[str] = set()
    for device in fleet.devices():
        subject = f"{type(device).__name__} {device.device_id}"
        if device.device_id in seen:
            bad(subject, "device_id", "appears twice")
        seen.add(device.device_id)
        if device.site_id not in sites:
            bad(subject, "site_id", f"{device.site_id!r} is not a site of the fleet (no feeder)")
        if not 0 < device.delivery_factor <= 1:
            bad(subject, "delivery_factor", f"must be in (0, 1], got {device.delivery_factor}")
        _check_device(bad, subject, device, horizon)

    for request in problem.requests:
        subject = f"request {request.request_id}"
        if (request.kw is None) == (request.cap_kw is None):
            bad(subject, "kw", "give exactly one of kw (reduction) and cap_kw (ceiling)")
        if request.kw is not None and not request.kw >= 0:
            bad(subject, "kw", f"must be >= 0 kW, got {request.kw}")
        if (request.feeder is None) == (request.region is None):
            bad(subject, "feeder", "give exactly one of feeder and region")
        elif request.feeder is not None and request.feeder not in {s.feeder for s in fleet.sites}:
            bad(subject, "feeder", f"{request.feeder!r} has no sites in the fleet")
        elif request.region is not None and request.region not in regions:
            bad(subject, "region", f"{request.region!r} is not a region of the fleet's feeders")
        if not request.end > request.start:
            bad(subject, "end", "must be after start")
        elif isinstance(request.cap_kw, tuple):
            count = round(horizon.position(request.end) - horizon.position(request.start))
            if len(request.cap_kw) != count or not all(math.isfinite(c) for c in request.cap_kw):
                bad(
                    subject,
                    "cap_kw",
                    f"needs {count} finite values, one per interval of the window",
                )
        if request.start < horizon.start or request.end > horizon.end:
            bad(
                subject,
                "start",
                f"window {request.start}..{request.end} is outside the horizon "
                f"{horizon.start}..{horizon.end}",
            )
        if not request.shortfall_price_per_kwh >= 0:
            bad(subject, "shortfall_price_per_kwh", "must be >= 0")

    if problem.prices is not None:
        _check_series(
            bad,
            "prices",
            "import_price_per_kwh",
            problem.prices.import_price_per_kwh,
            horizon,
            required=True,
        )
        _check_series(
            bad, "prices", "export_price_per_kwh", problem.prices.export_price_per_kwh, horizon
        )
        if not problem.prices.demand_charge_per_kw >= 0:
            bad("prices", "demand_charge_per_kw", "must be >= 0")
    if found:
        raise ProblemError(found)


def _check_series(
    bad: Report,
    subject: str,
    name: str,
    values: Series | None,
    horizon: Horizon,
    required: bool = False,
) -> None:
    if values is None:
        if required:
            bad(subject, name, "is required")
        return
    array = series(values, horizon)
    if array.shape != (horizon.intervals,):
        bad(subject, name, f"needs {horizon.intervals} values (one per interval), got {array.size}")
    elif not np.all(np.isfinite(array)):
        bad(subject, name, "has missing or non-finite values inside the horizon")


def _positive(
    bad: Report, subject: str, device: object, *names: str, allow_zero: bool = True
) -> None:
    for name in names:
        value = getattr(device, name)
        ok = value >= 0 if allow_zero else value > 0
        if not (isinstance(value, int | float) and math.isfinite(value) and ok):
            bad(subject, name, f"must be {'>=' if allow_zero else '>'} 0, got {value}")


def _fraction(bad: Report, subject: str, device: object, *names: str) -> None:
    for name in names:
        value = getattr(device, name)
        if value is not None and not 0 <= value <= 1:
            bad(subject, name, f"must be in [0, 1], got {value}")


def _check_device(bad: Report, subject: str, device: object, horizon: Horizon) -> None:
    if isinstance(device, Battery):
        _positive(
            bad,
            subject,
            device,
            "p_charge_max_kw",
            "p_discharge_max_kw",
            "degradation_cost_per_kwh",
        )
        _positive(bad, subject, device, "e_max_kwh", allow_zero=False)
        _fraction(
            bad,
            subject,
            device,
            "soc_min_frac",
            "soc_max_frac",
            "soc_initial_frac",
            "soc_final_min_frac",
        )
        if device.soc_min_frac > device.soc_max_frac:
            bad(subject, "soc_min_frac", "must not exceed soc_max_frac")
        elif not device.soc_min_frac <= device.soc_initial_frac <= device.soc_max_frac:
            bad(
                subject,
                "soc_initial_frac",
                f"{device.soc_initial_frac} is outside [soc_min_frac, soc_max_frac] = "
                f"[{device.soc_min_frac}, {device.soc_max_frac}]",
            )
        elif device.soc_final_min_frac is not None and device.e_max_kwh > 0:
            reach = (
                device.soc_initial_frac
                + (
                    device.charge_efficiency
                    * device.p_charge_max_kw
                    * horizon.intervals
                    * horizon.step_h
                )
                / device.e_max_kwh
            )
            if device.soc_final_min_frac > device.soc_max_frac:
                bad(subject, "soc_final_min_frac", f"exceeds soc_max_frac {device.soc_max_frac}")
            elif device.soc_final_min_frac > reach + 1e-9:
                bad(
                    subject,
                    "soc_final_min_frac",
                    f"{device.soc_final_min_frac} cannot be reached in the horizon "
                    f"(at most {reach:.3f} at full charging power)",
                )
        for name in ("charge_efficiency", "discharge_efficiency"):
            if not 0 < getattr(device, name) <= 1:
                bad(subject, name, f"must be in (0, 1], got {getattr(device, name)}")
    elif isinstance(device, ElectricVehicle):
        _positive(
            bad,
            subject,
            device,
            "p_max_kw",
            "energy_required_kwh",
            "v2g_p_max_kw",
            "unmet_energy_cost_per_kwh",
        )
        if not device.departure > device.arrival:
            bad(subject, "departure", f"{device.departure} is not after arrival {device.arrival}")
        if not 0 < device.charge_efficiency <= 1:
            bad(subject, "charge_efficiency", f"must be in (0, 1], got {device.charge_efficiency}")
        if device.v2g_p_max_kw > 0 and not (device.e_max_kwh and device.e_max_kwh > 0):
            bad(subject, "e_max_kwh", "is required (> 0) when v2g_p_max_kw > 0")
    elif isinstance(device, ShiftableLoad):
        if not device.profile_kw or any(not (p >= 0) for p in device.profile_kw):
            bad(subject, "profile_kw", "needs at least one value, all >= 0 kW")
        if device.latest_start < device.earliest_start:
            bad(subject, "latest_start", "is before earliest_start")
        last_end = horizon.position(device.latest_start) + len(device.profile_kw)
        if horizon.position(device.earliest_start) < 0 or last_end > horizon.intervals:
            bad(subject, "latest_start", "the run window must lie inside the horizon")
    elif isinstance(device, CurtailableLoad):
        _check_series(bad, subject, "baseline_kw", device.baseline_kw, horizon, required=True)
        _fraction(bad, subject, device, "max_curtail_frac", "rebound_frac")
        _positive(bad, subject, device, "max_event_h", "comfort_cost_per_kwh")
    elif isinstance(device, HeatPump):
        _positive(bad, subject, device, "p_max_kw", "heat_loss_kw_per_c")
        _positive(bad, subject, device, "cop", "thermal_capacity_kwh_per_c", allow_zero=False)
        if device.temp_min_c > device.temp_max_c:
            bad(subject, "temp_min_c", "must not exceed temp_max_c")
        _check_series(bad, subject, "outdoor_temp_c", device.outdoor_temp_c, horizon, required=True)
    elif isinstance(device, PhotovoltaicSystem):
        _check_series(bad, subject, "forecast_kw", device.forecast_kw, horizon, required=True)
        array = series(device.forecast_kw, horizon)
        if array.shape == (horizon.intervals,) and np.any(array < 0):
            bad(subject, "forecast_kw", "must be >= 0 kW (output, not grid power)")
