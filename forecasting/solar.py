"""Solar forecasts: a physical pvlib chain, corrected by a model learned on measured output.

The chain is NREL PVWatts version 5 [1]_ written with pvlib [2]_:

1. solar position at the middle of each interval (the weather labels its start);
2. plane-of-array irradiance with the Perez sky model and ground reflection;
3. angle-of-incidence loss of the beam with the physical (Fresnel) model of glass;
4. cell temperature with the Fuentes model (installed NOCT 45 °C, open rack);
5. PVWatts DC power (temperature coefficient gamma, default -0.0047/°C) less the
   system losses (default 14.08%);
6. the PVWatts inverter (96% nominal efficiency, clipping at the AC rating).

Without measured weather the chain runs on clear-sky irradiance (Ineichen with the
monthly Linke turbidity climatology). :class:`SolarForecaster` learns the ratio between what
a site measured and what the chain predicted (clouds, shading, soiling) with quantile
gradient boosting, and gives P10/P50/P90.

References
----------
.. [1] Dobos, A.P. (2014) "PVWatts Version 5 Manual", NREL/TP-6A20-62641.
.. [2] Anderson, K.S. et al. (2023) "pvlib python: 2023 project update", *Journal of
   Open Source Software* 8(92), 5994.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pvlib
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from forecasting.errors import ForecastError

WEATHER_COLUMNS = ("dni_w_per_m2", "dhi_w_per_m2", "temp_air_c", "wind_speed_m_per_s")


@dataclass(frozen=True)
class PVSystemSpec:
    """A fixed-tilt PV system and where it stands.

    Parameters
    ----------
    latitude, longitude : float
        [degrees], north and east positive.
    altitude_m : float
        Height above sea level [m].
    tilt_deg, azimuth_deg : float
        Surface tilt from horizontal and azimuth clockwise from north [degrees].
    dc_capacity_kw : float
        DC nameplate at standard test conditions [kW].
    dc_ac_ratio : float
        DC nameplate over AC rating [-].
    losses_frac : float
        System losses (soiling, wiring, mismatch, ...) [0-1].
    inverter_efficiency : float
        Nominal inverter efficiency [0-1].
    gamma_per_c : float
        Temperature coefficient of power [1/°C].
    albedo : float
        Ground reflectance [0-1].
    """

    latitude: float
    longitude: float
    altitude_m: float = 0.0
    tilt_deg: float = 20.0
    azimuth_deg: float = 180.0
    dc_capacity_kw: float = 4.0
    dc_ac_ratio: float = 1.2
    losses_frac: float = 0.1408
    inverter_efficiency: float = 0.96
    gamma_per_c: float = -0.0047
    albedo: float = 0.2

    def __post_init__(self) -> None:
        checks = [
            ("latitude", -90 <= self.latitude <= 90, "between -90 and 90"),
            ("longitude", -180 <= self.longitude <= 180, "between -180 and 180"),
            ("tilt_deg", 0 <= self.tilt_deg <= 90, "between 0 and 90"),
            ("azimuth_deg", 0 <= self.azimuth_deg <= 360, "between 0 and 360"),
            ("dc_capacity_kw", self.dc_capacity_kw > 0, "above 0"),
            ("dc_ac_ratio", self.dc_ac_ratio > 0, "above 0"),
            ("losses_frac", 0 <= self.losses_frac < 1, "in [0, 1)"),
            ("inverter_efficiency", 0 < self.inverter_efficiency <= 1, "in (0, 1]"),
        ]
        for name, ok, limit in checks:
            if not ok:
                raise ForecastError(name, f"{getattr(self, name)} must be {limit}")

    @property
    def ac_capacity_kw(self) -> float:
        return self.dc_capacity_kw / self.dc_ac_ratio


def physical_output(
    weather: pd.DataFrame, system: PVSystemSpec, freq: pd.Timedelta | None = None
) -> pd.DataFrame:
    """Run the PVWatts chain (module docstring) on ``weather``.

    Parameters
    ----------
    weather : pandas.DataFrame
        Indexed by tz-aware interval starts; columns ``dni_w_per_m2``, ``dhi_w_per_m2``
        [W/m²], ``temp_air_c`` [°C] and ``wind_speed_m_per_s`` [m/s].
    system : PVSystemSpec
    freq : pandas.Timedelta, optional
        Interval length (inferred from the index when not given).

    Returns
    -------
    pandas.DataFrame
        ``ac_kw``, ``dc_kw``, ``poa_w_per_m2``, ``cell_temp_c`` per interval.
    """
    missing = [c for c in WEATHER_COLUMNS if c not in weather.columns]
    if missing:
        raise ForecastError("weather", f"missing column(s) {missing}")
    index = pd.DatetimeIndex(weather.index)
    if index.tz is None:
        raise ForecastError("weather", "timestamps need a time zone (UTC or the site's)")
    step = freq if freq is not None else _step(index)
    middle = index + step / 2
    temp_air = weather["temp_air_c"].to_numpy(dtype=float)
    position = pvlib.solarposition.get_solarposition(
        middle, system.latitude, system.longitude, altitude=system.altitude_m, temperature=temp_air
    )
    zenith = position["apparent_zenith"].to_numpy()
    azimuth = position["azimuth"].to_numpy()
    dni = weather["dni_w_per_m2"].to_numpy(dtype=float)
    dhi = weather["dhi_w_per_m2"].to_numpy(dtype=float)
    ghi = dni * np.clip(np.cos(np.radians(position["zenith"].to_numpy())), 0, None) + dhi
    irradiance = pvlib.irradiance.get_total_irradiance(
        system.tilt_deg,
        system.azimuth_deg,
        zenith,
        azimuth,
        dni,
        ghi,
        dhi,
        dni_extra=pvlib.irradiance.get_extra_radiation(_day_of_year(middle)),
        airmass=pvlib.atmosphere.get_relative_airmass(zenith),
        albedo=system.albedo,
        model="perez",
    )
    beam = np.nan_to_num(np.asarray(irradiance["poa_direct"], dtype=float))
    diffuse = np.nan_to_num(np.asarray(irradiance["poa_diffuse"], dtype=float))
    poa = beam + diffuse
    angle = pvlib.irradiance.aoi(system.tilt_deg, system.azimuth_deg, zenith, azimuth)
    effective = beam * np.nan_to_num(pvlib.iam.physical(angle)) + diffuse
    cell = pvlib.temperature.fuentes(
        pd.Series(poa, index=index),
        pd.Series(temp_air, index=index),
        weather["wind_speed_m_per_s"].astype(float),
        noct_installed=45,
        surface_tilt=system.tilt_deg,
    ).to_numpy()
    dc_w = pvlib.pvsystem.pvwatts_dc(
        effective, cell, system.dc_capacity_kw * 1000, system.gamma_per_c
    ) * (1 - system.losses_frac)
    ac_w = pvlib.inverter.pvwatts(
        dc_w,
        system.ac_capacity_kw * 1000 / system.inverter_efficiency,
        eta_inv_nom=system.inverter_efficiency,
    )
    ac_w = np.clip(np.nan_to_num(np.asarray(ac_w, dtype=float)), 0, None)
    return pd.DataFrame(
        {
            "ac_kw": ac_w / 1000,
            "dc_kw": np.clip(np.asarray(dc_w, dtype=float), 0, None) / 1000,
            "poa_w_per_m2": poa,
            "cell_temp_c": cell,
        },
        index=index,
    )


def clear_sky_weather(
    index: pd.DatetimeIndex,
    system: PVSystemSpec,
    temp_air_c: float = 20.0,
    wind_speed_m_per_s: float = 1.0,
) -> pd.DataFrame:
    """Clear-sky irradiance (Ineichen, Linke turbidity climatology) for the intervals
    of ``index``, with a constant air temperature and wind speed."""
    middle = index + _step(index) / 2
    position = pvlib.solarposition.get_solarposition(
        middle, system.latitude, system.longitude, altitude=system.altitude_m
    )
    zenith = position["apparent_zenith"].to_numpy()
    airmass = pvlib.atmosphere.get_absolute_airmass(
        pvlib.atmosphere.get_relative_airmass(zenith),
        pvlib.atmosphere.alt2pres(system.altitude_m),
    )
    # Monthly turbidity: pvlib's daily interpolation calls an attribute pandas deprecates.
    turbidity = pvlib.clearsky.lookup_linke_turbidity(
        middle, system.latitude, system.longitude, interp_turbidity=False
    ).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):  # night: the sun is down
        sky = pvlib.clearsky.ineichen(
            zenith,
            airmass,
            turbidity,
            altitude=system.altitude_m,
            dni_extra=pvlib.irradiance.get_extra_radiation(_day_of_year(middle)),
        )
    return pd.DataFrame(
        {
            "dni_w_per_m2": np.nan_to_num(np.asarray(sky["dni"], dtype=float)),
            "dhi_w_per_m2": np.nan_to_num(np.asarray(sky["dhi"], dtype=float)),
            "temp_air_c": temp_air_c,
            "wind_speed_m_per_s": wind_speed_m_per_s,
        },
        index=index,
    )


def _day_of_year(index: pd.DatetimeIndex) -> np.ndarray:
    # pvlib's own conversion calls an attribute pandas deprecates; give it numbers.
    return index.tz_convert("UTC").day_of_year.to_numpy(dtype=float)


def _step(index: pd.DatetimeIndex) -> pd.Timedelta:
    if len(index) < 2:
        raise ForecastError("weather", "at least two timestamps are needed to know the step")
    return pd.Timedelta(pd.Series(index).diff().dropna().min())


@dataclass
class SolarForecaster:
    """The physical chain corrected by quantile gradient boosting on measured output.

    The learned models predict, one per quantile, what the measured AC power adds to
    the chain's output (weather-driven when weather is given, clear-sky otherwise) from
    that output, the clear-sky output, the time of day and the day of year: where the
    chain is right they add nothing. At night (no clear-sky output) the forecast is zero.
    """

    system: PVSystemSpec
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    random_state: int = 0
    fitted_: dict[float, Any] = field(default_factory=dict, repr=False)
    uses_weather_: bool = False

    def features(self, index: pd.DatetimeIndex, weather: pd.DataFrame | None) -> pd.DataFrame:
        clear = physical_output(clear_sky_weather(index, self.system), self.system)
        frame = pd.DataFrame(
            {
                "clear_sky_kw": clear["ac_kw"].to_numpy(),
                "time_of_day_h": (index.hour + index.minute / 60).to_numpy(dtype=float),
                "day_of_year": index.day_of_year.to_numpy(dtype=float),
            },
            index=index,
        )
        if weather is not None:
            frame["physical_kw"] = physical_output(weather, self.system)["ac_kw"].to_numpy()
        return frame

    def fit(self, measured_kw: pd.Series, weather: pd.DataFrame | None = None) -> SolarForecaster:
        """Learn from measured AC output [kW] (and the weather of the same intervals)."""
        index = pd.DatetimeIndex(measured_kw.index)
        X = self.features(index, weather)
        usable = measured_kw.notna().to_numpy() & (X["clear_sky_kw"].to_numpy() > 0)
        if usable.sum() < 100:
            raise ForecastError("measured_kw", f"{int(usable.sum())} daylight values; need 100")
        self.fitted_ = {}
        residual = measured_kw.to_numpy(dtype=float) - _base(X)
        with threadpool_limits(limits=1):  # see LoadForecaster._fit_models
            for q in self.quantiles:
                model = HistGradientBoostingRegressor(
                    loss="quantile", quantile=q, max_iter=200, random_state=self.random_state
                )
                self.fitted_[q] = model.fit(X[usable], residual[usable])
        self.uses_weather_ = weather is not None
        return self

    def predict(self, index: pd.DatetimeIndex, weather: pd.DataFrame | None = None) -> pd.DataFrame:
        """P10/P50/P90 AC output [kW] for the intervals of ``index``."""
        if not self.fitted_:
            raise ForecastError("model", "not trained yet")
        if self.uses_weather_ and weather is None:
            raise ForecastError("weather", "this model was trained with weather; give it")
        X = self.features(pd.DatetimeIndex(index), weather if self.uses_weather_ else None)
        limit = self.system.ac_capacity_kw
        base = _base(X)
        with threadpool_limits(limits=1):
            values = np.column_stack([base + self.fitted_[q].predict(X) for q in self.quantiles])
        values = np.clip(np.sort(values, axis=1), 0, limit)
        values[X["clear_sky_kw"].to_numpy() <= 0] = 0.0
        columns = [f"p{round(q * 100):02d}" for q in self.quantiles]
        return pd.DataFrame(values, index=X.index, columns=columns)


def _base(X: pd.DataFrame) -> np.ndarray:
    """The chain's output the learned models correct: weather-driven when given."""
    column = "physical_kw" if "physical_kw" in X.columns else "clear_sky_kw"
    return X[column].to_numpy(dtype=float)


def read_pvwatts_hourly(path: Any) -> tuple[pd.DataFrame, pd.Series, PVSystemSpec]:
    """Read an NREL PVWatts hourly CSV (header block, then the 8,760 hours).

    Returns the weather (indexed by local standard time of a non-leap year), the AC
    output [kW], and the system the header describes.
    """
    header = pd.read_csv(path, nrows=16, header=None, usecols=[0, 1], names=["key", "value"])
    meta = dict(zip(header["key"].str.strip(" :"), header["value"], strict=True))
    frame = pd.read_csv(path, skiprows=17, nrows=8760)
    frame.columns = [
        "month",
        "day",
        "hour",
        "dni_w_per_m2",
        "dhi_w_per_m2",
        "temp_air_c",
        "wind_speed_m_per_s",
        "poa_w_per_m2",
        "cell_temp_c",
        "dc_w",
        "ac_w",
    ]
    longitude = -float(meta["Long (deg W)"])
    # PVWatts reports local standard time; at this longitude that is UTC-7.
    offset = round(longitude / 15)
    stamps = pd.to_datetime(
        {"year": 2019, "month": frame["month"], "day": frame["day"], "hour": frame["hour"]}
    )
    index = pd.DatetimeIndex(stamps).tz_localize(f"Etc/GMT{-offset:+d}")
    weather = frame[list(WEATHER_COLUMNS)].set_axis(index).astype(float)
    system = PVSystemSpec(
        latitude=float(meta["Lat (deg N)"]),
        longitude=longitude,
        altitude_m=float(meta["Elev (m)"]),
        tilt_deg=float(meta["Array Tilt (deg)"]),
        azimuth_deg=float(meta["Array Azimuth (deg)"]),
        dc_capacity_kw=float(meta["DC System Size (kW)"]),
        dc_ac_ratio=float(meta["DC to AC Size Ratio"]),
        losses_frac=float(meta["System Losses"]) / 100,
        inverter_efficiency=float(meta["Invert Efficiency"]) / 100,
    )
    return weather, (frame["ac_w"].astype(float) / 1000).set_axis(index), system
