"""EV availability: when cars arrive, how long they stay and what they need, per site.

From a history of charging sessions (the ACN-Data format [1]_ or any table with
arrival, departure and energy), :func:`ev_availability` learns per site the number of
sessions per weekday and weekend day and the empirical distributions of arrival time,
stay and energy. :func:`expected_sessions` turns them into the sessions of a coming
day that have not plugged in yet, so that the optimizer can plan for them: ``n``
representative sessions, the ones nearest to evenly spaced quantiles of arrival time,
each keeping its own stay and energy (so that, say, early arrivals keep their long
stays).

References
----------
.. [1] Lee, Z.J., Li, T. and Low, S.H. (2019) "ACN-Data: analysis and applications of
   an open EV charging dataset", *Proceedings of the Tenth ACM International
   Conference on Future Energy Systems (e-Energy '19)*, 139-149.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.errors import ForecastError

COLUMNS = ("arrival", "departure", "energy_kwh", "site_id")


def read_acn_sessions(path: str | Path, timezone: str = "America/Los_Angeles") -> pd.DataFrame:
    """Sessions of an ACN-Data CSV as ``arrival``, ``departure`` (in ``timezone``),
    ``energy_kwh`` (delivered), ``requested_kwh`` and ``site_id`` (the station)."""
    raw = pd.read_csv(path)
    missing = [
        c for c in ("arrival", "departure", "delivered_energy (kWh)", "station_id") if c not in raw
    ]
    if missing:
        raise ForecastError("data", f"not an ACN-Data session file: missing {missing}")
    return pd.DataFrame(
        {
            "arrival": pd.to_datetime(raw["arrival"], utc=True).dt.tz_convert(timezone),
            "departure": pd.to_datetime(raw["departure"], utc=True).dt.tz_convert(timezone),
            "energy_kwh": raw["delivered_energy (kWh)"].astype(float),
            "requested_kwh": pd.to_numeric(
                raw.get("requested_energy (kWh)", pd.Series(np.nan, index=raw.index)),
                errors="coerce",
            ),
            "site_id": raw["station_id"].astype(str),
        }
    )


@dataclass(frozen=True)
class Availability:
    """What a site's session history says about its EVs.

    Attributes
    ----------
    site_id : str
    days : int
        Days the history spans.
    sessions_per_weekday, sessions_per_weekend_day : float
        Mean sessions per day of each kind.
    arrival_h, stay_h, energy_kwh : dict
        10th, 50th and 90th percentiles (``p10``, ``p50``, ``p90``) of the local arrival
        time [h after midnight], the stay [h] and the energy delivered [kWh].
    sessions : pandas.DataFrame
        The sessions themselves (``arrival_h``, ``stay_h``, ``energy_kwh``, ``weekend``),
        from which :func:`expected_sessions` draws.
    """

    site_id: str
    days: int
    sessions_per_weekday: float
    sessions_per_weekend_day: float
    arrival_h: dict[str, float]
    stay_h: dict[str, float]
    energy_kwh: dict[str, float]
    sessions: pd.DataFrame


def _percentiles(values: pd.Series) -> dict[str, float]:
    p10, p50, p90 = np.quantile(values.to_numpy(dtype=float), [0.1, 0.5, 0.9])
    return {"p10": float(p10), "p50": float(p50), "p90": float(p90)}


def ev_availability(sessions: pd.DataFrame, by_site: bool = True) -> dict[str, Availability]:
    """Learn each site's availability (or one for all sessions, ``by_site=False``,
    under the id ``"all"``).

    ``sessions`` needs ``arrival`` and ``departure`` (tz-aware, in the sites' local
    time), ``energy_kwh`` and, with ``by_site``, ``site_id``.
    """
    needed = COLUMNS if by_site else COLUMNS[:3]
    missing = [c for c in needed if c not in sessions.columns]
    if missing:
        raise ForecastError("sessions", f"missing column(s) {missing}")
    frame = sessions.dropna(subset=list(needed))
    frame = frame[(frame["departure"] > frame["arrival"]) & (frame["energy_kwh"] >= 0)]
    if frame.empty:
        raise ForecastError("sessions", "no session with a departure after its arrival")
    arrival = pd.DatetimeIndex(frame["arrival"])
    calendar = pd.date_range(arrival.min().normalize(), arrival.max().normalize(), freq="D")
    weekdays = int((calendar.day_of_week < 5).sum())
    weekend_days = len(calendar) - weekdays
    table = pd.DataFrame(
        {
            "arrival_h": (arrival - arrival.normalize()) / pd.Timedelta("1h"),
            "stay_h": (frame["departure"] - frame["arrival"]).to_numpy() / pd.Timedelta("1h"),
            "energy_kwh": frame["energy_kwh"].to_numpy(dtype=float),
            "weekend": arrival.day_of_week >= 5,
            "site_id": frame["site_id"].to_numpy() if by_site else "all",
        }
    )
    out = {}
    for site, group in table.groupby("site_id", sort=True):
        out[str(site)] = Availability(
            site_id=str(site),
            days=len(calendar),
            sessions_per_weekday=float((~group["weekend"]).sum() / max(weekdays, 1)),
            sessions_per_weekend_day=float(group["weekend"].sum() / max(weekend_days, 1)),
            arrival_h=_percentiles(group["arrival_h"]),
            stay_h=_percentiles(group["stay_h"]),
            energy_kwh=_percentiles(group["energy_kwh"]),
            sessions=group.drop(columns="site_id").reset_index(drop=True),
        )
    return out


def expected_sessions(
    availability: Availability, day: pd.Timestamp, count: int | None = None
) -> pd.DataFrame:
    """Representative sessions of ``day`` (a local date with its time zone).

    ``count`` defaults to the site's mean sessions for that kind of day, rounded.
    Returns ``arrival``, ``departure`` and ``energy_kwh`` per session, sorted by arrival.
    """
    day = pd.Timestamp(day)
    if day.tzinfo is None:
        raise ForecastError("day", "give the day with the site's time zone")
    weekend = day.day_of_week >= 5
    if count is None:
        mean = (
            availability.sessions_per_weekend_day if weekend else availability.sessions_per_weekday
        )
        count = round(mean)
    pool = availability.sessions[availability.sessions["weekend"] == weekend]
    if pool.empty:
        pool = availability.sessions
    pool = pool.sort_values("arrival_h").reset_index(drop=True)
    if count <= 0:
        return pd.DataFrame(columns=["arrival", "departure", "energy_kwh"])
    picks = np.round((np.arange(count) + 0.5) / count * (len(pool) - 1)).astype(int)
    chosen = pool.iloc[picks]
    start = day.normalize()
    arrival = start + pd.to_timedelta(chosen["arrival_h"].to_numpy(), unit="h")
    departure = arrival + pd.to_timedelta(chosen["stay_h"].to_numpy(), unit="h")
    return pd.DataFrame(
        {
            "arrival": arrival.round("1min"),
            "departure": departure.round("1min"),
            "energy_kwh": chosen["energy_kwh"].to_numpy(),
        }
    )
