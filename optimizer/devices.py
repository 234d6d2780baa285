"""Device models: what each kind of device can do, as frozen dataclasses.

Every power is in kW with the project's sign: positive = drawn from the grid. A
device belongs to a site (a meter) and the site to a feeder. Time series are pandas
Series indexed by the horizon's UTC timestamps, or plain sequences of one value per
interval of the horizon.

Each device carries ``delivery_factor`` in (0, 1]: the share of a planned change that
it is expected to deliver, from its delivery record (1.0 when unknown). Capacity
requests are planned on expected, not nominal, delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

Series = Sequence[float] | pd.Series | np.ndarray


@dataclass(frozen=True)
class Battery:
    """A home or C&I battery.

    Parameters
    ----------
    p_charge_max_kw, p_discharge_max_kw : float
        Largest charge and discharge power at the meter [kW], both >= 0.
    e_max_kwh : float
        Usable energy capacity [kWh].
    soc_min_frac, soc_max_frac : float
        State-of-charge bounds [0-1].
    soc_initial_frac : float
        State of charge at the horizon's start [0-1].
    soc_final_min_frac : float or None
        Least state of charge at the horizon's end [0-1]; ``None`` = no target.
    charge_efficiency, discharge_efficiency : float
        One-way efficiencies (0-1]; round trip is their product.
    degradation_cost_per_kwh : float
        Cost of each kWh charged or discharged [currency/kWh]. Besides wear, it keeps
        a plan from moving batteries that nothing asks to move.
    """

    device_id: str
    site_id: str
    p_charge_max_kw: float
    p_discharge_max_kw: float
    e_max_kwh: float
    soc_min_frac: float = 0.0
    soc_max_frac: float = 1.0
    soc_initial_frac: float = 0.5
    soc_final_min_frac: float | None = None
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    degradation_cost_per_kwh: float = 0.02
    delivery_factor: float = 1.0


@dataclass(frozen=True)
class ElectricVehicle:
    """An EV at a charger, plugged in from ``arrival`` to ``departure``.

    Only whole intervals inside the plugged window are used. The EV takes no more than
    the energy required (so that a car is never filled past what its driver asked for,
    even when energy is paid for taking it). The energy required by departure is soft:
    what is not delivered is the slack ``ev_unmet_kwh``, priced at
    ``unmet_energy_cost_per_kwh``, so a late or short stay never makes a plan
    infeasible. When departure is past the horizon's end, the requirement is prorated
    to the plugged intervals inside the horizon.

    Parameters
    ----------
    p_max_kw : float
        Largest charging power [kW].
    energy_required_kwh : float
        Energy to add to the battery by departure [kWh].
    v2g_p_max_kw : float
        Largest discharging power back to the grid [kW] (0 = no V2G).
    v2g_degradation_cost_per_kwh : float
        Battery wear of each kWh sent back [currency/kWh].
    e_max_kwh : float or None
        Battery capacity [kWh]; needed with V2G to bound the energy drawn back.
    """

    device_id: str
    site_id: str
    arrival: pd.Timestamp
    departure: pd.Timestamp
    p_max_kw: float
    energy_required_kwh: float
    charge_efficiency: float = 0.92
    v2g_p_max_kw: float = 0.0
    v2g_degradation_cost_per_kwh: float = 0.02
    e_max_kwh: float | None = None
    unmet_energy_cost_per_kwh: float = 1.0
    delivery_factor: float = 1.0


@dataclass(frozen=True)
class ShiftableLoad:
    """A batch load (pool pump, dishwasher, water heater cycle) that runs once.

    ``profile_kw`` is its power in each interval of a run. The run must start in
    ``[earliest_start, latest_start]``. Contiguous runs need a start choice (MILP);
    with ``contiguous=False`` the load may be interrupted (LP): its energy is served
    inside the window at no more than its peak power. The baseline run starts at
    ``baseline_start`` (default: the earliest start).
    """

    device_id: str
    site_id: str
    profile_kw: tuple[float, ...]
    earliest_start: pd.Timestamp
    latest_start: pd.Timestamp
    contiguous: bool = True
    baseline_start: pd.Timestamp | None = None
    delivery_factor: float = 1.0


@dataclass(frozen=True)
class CurtailableLoad:
    """A load that can be turned down for a while (thermostat, HVAC).

    Parameters
    ----------
    baseline_kw : Series
        Forecast power without control [kW], one value per interval.
    max_curtail_frac : float
        Largest share of the baseline that may be shed [0-1].
    max_event_h : float
        Longest curtailment event [h]; in the LP, curtailment in any window of that
        length plus one interval is bounded by what an event of that length sheds.
    comfort_cost_per_kwh : float
        Cost of each kWh shed [currency/kWh].
    rebound_frac : float
        Share of the shed energy that comes back after the event [0-1].
    """

    device_id: str
    site_id: str
    baseline_kw: Series
    max_curtail_frac: float = 0.3
    max_event_h: float = 2.0
    comfort_cost_per_kwh: float = 0.1
    rebound_frac: float = 0.5
    p_max_kw: float | None = None
    delivery_factor: float = 1.0


@dataclass(frozen=True)
class HeatPump:
    """A heat pump heating one thermal node (a house).

    The indoor temperature follows
    ``T[t+1] = T[t] + dt / C * (cop * p[t] - H * (T[t] - T_out[t]))``.
    The comfort band is soft: each degree-hour outside it costs ``comfort_cost_per_ch``.

    Parameters
    ----------
    p_max_kw : float
        Electrical power rating [kW].
    cop : float
        Coefficient of performance (heat out / electricity in).
    thermal_capacity_kwh_per_c : float
        Heat to raise the node one degree [kWh/°C].
    heat_loss_kw_per_c : float
        Heat lost per degree above the outdoor temperature [kW/°C].
    outdoor_temp_c : Series
        Outdoor temperature per interval [°C].
    """

    device_id: str
    site_id: str
    p_max_kw: float
    cop: float
    thermal_capacity_kwh_per_c: float
    heat_loss_kw_per_c: float
    outdoor_temp_c: Series
    temp_initial_c: float = 20.0
    temp_min_c: float = 19.0
    temp_max_c: float = 22.0
    comfort_cost_per_ch: float = 1.0
    delivery_factor: float = 1.0


@dataclass(frozen=True)
class PhotovoltaicSystem:
    """Rooftop PV; its output may be curtailed when exports are capped or prices negative.

    ``forecast_kw`` is the expected AC output per interval [kW], >= 0.
    """

    device_id: str
    site_id: str
    forecast_kw: Series
    curtailable: bool = True
    delivery_factor: float = 1.0


@dataclass(frozen=True)
class Site:
    """A meter: the point where a home or business meets the grid.

    Parameters
    ----------
    import_max_kw, export_max_kw : float or None
        Limits of the connection [kW], both >= 0; ``None`` = unlimited.
    base_load_kw : Series or None
        Uncontrolled load behind the meter [kW] per interval (0 when ``None``).
    """

    site_id: str
    feeder: str
    import_max_kw: float | None = None
    export_max_kw: float | None = None
    base_load_kw: Series | None = None


@dataclass(frozen=True)
class Feeder:
    """A distribution feeder with its capacity [kW] (``None`` = unlimited)."""

    feeder_id: str
    region: str | None = None
    import_max_kw: float | None = None
    export_max_kw: float | None = None


Device = Battery | ElectricVehicle | ShiftableLoad | CurtailableLoad | HeatPump | PhotovoltaicSystem


#: The fields of :class:`Fleet` that hold devices, in :meth:`Fleet.devices` order.
FAMILIES = (
    "batteries",
    "vehicles",
    "shiftable_loads",
    "curtailable_loads",
    "heat_pumps",
    "pv_systems",
)


@dataclass(frozen=True)
class Fleet:
    """The devices to plan and the sites and feeders that couple them."""

    sites: tuple[Site, ...]
    feeders: tuple[Feeder, ...] = ()
    batteries: tuple[Battery, ...] = ()
    vehicles: tuple[ElectricVehicle, ...] = ()
    shiftable_loads: tuple[ShiftableLoad, ...] = ()
    curtailable_loads: tuple[CurtailableLoad, ...] = ()
    heat_pumps: tuple[HeatPump, ...] = ()
    pv_systems: tuple[PhotovoltaicSystem, ...] = ()

    def devices(self) -> tuple[Device, ...]:
        """Every device, kind by kind, in a fixed order (built once per fleet)."""
        return self._devices

    @cached_property
    def _devices(self) -> tuple[Device, ...]:
        return (
            *self.batteries,
            *self.vehicles,
            *self.shiftable_loads,
            *self.curtailable_loads,
            *self.heat_pumps,
            *self.pv_systems,
        )
