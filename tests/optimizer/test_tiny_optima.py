"""Tiny cases whose optimum is derived by hand, and residual checks on every plan."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from optimizer.checks import residuals
from optimizer.devices import (
    CurtailableLoad,
    ElectricVehicle,
    HeatPump,
    PhotovoltaicSystem,
    ShiftableLoad,
    Site,
)
from optimizer.problem import CapacityRequest, Prices, Problem, ProblemError
from optimizer.results import Method, Plan, plan
from tests.optimizer.fleets import START, at, battery, hours, one_site

#: The formulation under test: every case runs on the array path and the Pyomo model.
FORMULATION: list[Method] = ["arrays"]


@pytest.fixture(params=["arrays", "pyomo"], autouse=True)
def formulation(request: pytest.FixtureRequest) -> Method:
    FORMULATION[0] = request.param
    return FORMULATION[0]


def solved(problem: Problem) -> Plan:
    result = plan(problem, method=FORMULATION[0])
    assert residuals(problem, result) == []
    return result


def test_battery_arbitrages_two_prices() -> None:
    # Charge 5 kWh at 0.10 and sell at 0.50, twice; 90% each way: 5 kW in stores
    # 4.5 kWh, which gives back 4.05 kWh; discharge is limited by the energy stored.
    fleet = one_site(batteries=(battery(charge_efficiency=0.9, discharge_efficiency=0.9),))
    prices = Prices([0.10, 0.50, 0.10, 0.50])
    result = solved(Problem(hours(4), fleet, prices=prices))
    p = result.power_kw["b1"].to_numpy()
    np.testing.assert_allclose(p, [5.0, -4.05, 5.0, -4.05], atol=1e-6)
    assert result.objective == pytest.approx(2 * (5 * 0.10 - 4.05 * 0.50))
    assert result.costs["energy"] == pytest.approx(result.objective)


def test_ev_charges_in_the_cheapest_hours() -> None:
    ev = ElectricVehicle(
        "ev1", "s1", at(0), at(4), p_max_kw=5.0, energy_required_kwh=8.0, charge_efficiency=1.0
    )
    result = solved(
        Problem(hours(4), one_site(vehicles=(ev,)), prices=Prices([0.3, 0.1, 0.2, 0.4]))
    )
    np.testing.assert_allclose(result.power_kw["ev1"].to_numpy(), [0, 5, 3, 0], atol=1e-6)
    assert result.objective == pytest.approx(5 * 0.1 + 3 * 0.2)
    assert float(result.state["ev_unmet_kwh"]["ev1"]) == pytest.approx(0.0, abs=1e-9)


def test_late_ev_gets_what_fits_and_the_rest_is_unmet() -> None:
    ev = ElectricVehicle(
        "ev1",
        "s1",
        at(2),
        at(4),
        p_max_kw=5.0,
        energy_required_kwh=20.0,
        charge_efficiency=1.0,
        unmet_energy_cost_per_kwh=2.0,
    )
    result = solved(Problem(hours(4), one_site(vehicles=(ev,)), prices=Prices([0.1] * 4)))
    np.testing.assert_allclose(result.power_kw["ev1"].to_numpy(), [0, 0, 5, 5], atol=1e-6)
    assert float(result.state["ev_unmet_kwh"]["ev1"]) == pytest.approx(10.0)
    assert result.costs["unmet_ev_energy"] == pytest.approx(20.0)


def test_request_exactly_met_by_one_battery() -> None:
    fleet = one_site(batteries=(battery(soc_initial_frac=1.0),))
    request = CapacityRequest(
        "r1", at(1), at(3), feeder="F-1", kw=5.0, shortfall_price_per_kwh=100.0
    )
    result = solved(Problem(hours(4), fleet, requests=(request,)))
    outcome = result.requests[0]
    np.testing.assert_allclose(outcome.expected_kw.to_numpy(), [5.0, 5.0], atol=1e-6)
    assert outcome.shortfall_kw.sum() == pytest.approx(0.0)
    assert outcome.devices_called == ["b1"]
    assert outcome.reasons == {}
    np.testing.assert_allclose(result.power_kw["b1"].to_numpy()[1:3], [-5.0, -5.0], atol=1e-6)


def test_unattainable_request_gets_best_effort_shortfall_and_reasons() -> None:
    fleet = one_site(batteries=(battery(soc_initial_frac=1.0),))
    request = CapacityRequest(
        "r1", at(1), at(3), feeder="F-1", kw=8.0, shortfall_price_per_kwh=100.0
    )
    result = solved(Problem(hours(4), fleet, requests=(request,)))
    outcome = result.requests[0]
    np.testing.assert_allclose(outcome.shortfall_kw.to_numpy(), [3.0, 3.0], atol=1e-6)
    assert outcome.shortfall_kwh == pytest.approx(6.0)
    assert result.costs["shortfall"] == pytest.approx(600.0)
    # One more kW in a short interval costs the shortfall price for that hour.
    np.testing.assert_allclose(outcome.marginal_cost_per_kw.to_numpy(), [100.0, 100.0], atol=1e-6)
    assert outcome.reasons[at(1)] == ["battery discharging at its power limit: 1 device"]


def test_empty_battery_is_named_as_the_reason() -> None:
    fleet = one_site(batteries=(battery(soc_initial_frac=0.5, p_discharge_max_kw=10.0),))
    request = CapacityRequest(
        "r1", at(0), at(2), feeder="F-1", kw=5.0, shortfall_price_per_kwh=100.0
    )
    result = solved(Problem(hours(2), fleet, requests=(request,)))
    assert result.requests[0].shortfall_kwh == pytest.approx(5.0)
    for reasons in result.requests[0].reasons.values():
        assert reasons == ["battery energy used up (state of charge reaches its minimum): 1 device"]


def test_delivery_risk_plans_for_expected_not_nominal_delivery() -> None:
    # A little wear cost makes the optimum unique: no more discharge than needed.
    fleet = one_site(
        batteries=(
            battery(soc_initial_frac=1.0, delivery_factor=0.5, degradation_cost_per_kwh=0.01),
        )
    )
    request = CapacityRequest(
        "r1", at(0), at(1), feeder="F-1", kw=2.0, shortfall_price_per_kwh=100.0
    )
    result = solved(Problem(hours(2), fleet, requests=(request,)))
    assert result.power_kw["b1"].iloc[0] == pytest.approx(-4.0)
    assert result.requests[0].expected_kw.iloc[0] == pytest.approx(2.0)


def test_cap_request_on_net_load() -> None:
    site = Site("s1", "F-1", base_load_kw=[6.0, 6.0])
    fleet = one_site(batteries=(battery(soc_initial_frac=1.0, degradation_cost_per_kwh=0.01),))
    fleet = type(fleet)(sites=(site,), feeders=fleet.feeders, batteries=fleet.batteries)
    request = CapacityRequest(
        "cap", at(0), at(2), region="North", cap_kw=4.0, shortfall_price_per_kwh=50.0
    )
    result = solved(Problem(hours(2), fleet, requests=(request,)))
    np.testing.assert_allclose(result.feeder_net_kw["F-1"].to_numpy(), [4.0, 4.0], atol=1e-6)
    np.testing.assert_allclose(result.requests[0].expected_kw.to_numpy(), [4.0, 4.0], atol=1e-6)
    assert result.requests[0].shortfall_kw.sum() == pytest.approx(0.0)


def test_demand_charge_flattens_the_peak() -> None:
    # 8 kWh of EV energy over 4 hours: spreading at 2 kW beats cheap bursts once the
    # demand charge (1.0 per kW of peak) outweighs the price spread (0.1).
    ev = ElectricVehicle(
        "ev1", "s1", at(0), at(4), p_max_kw=8.0, energy_required_kwh=8.0, charge_efficiency=1.0
    )
    prices = Prices([0.1, 0.2, 0.2, 0.2], demand_charge_per_kw=1.0)
    result = solved(Problem(hours(4), one_site(vehicles=(ev,)), prices=prices))
    np.testing.assert_allclose(result.power_kw["ev1"].to_numpy(), [2, 2, 2, 2], atol=1e-6)
    assert result.costs["demand_charge"] == pytest.approx(2.0)


def test_shiftable_load_moves_to_the_cheap_hours() -> None:
    load = ShiftableLoad(
        "pump",
        "s1",
        profile_kw=(1.0, 1.0),
        earliest_start=at(0),
        latest_start=at(4),
        contiguous=True,
    )
    prices = Prices([0.5, 0.4, 0.3, 0.1, 0.2, 0.9])
    result = solved(
        Problem(hours(6), one_site(shiftable_loads=(load,)), prices=prices, integer=True)
    )
    np.testing.assert_allclose(result.power_kw["pump"].to_numpy(), [0, 0, 0, 1, 1, 0], atol=1e-6)
    interruptible = ShiftableLoad(
        "pump",
        "s1",
        profile_kw=(1.0, 1.0),
        earliest_start=at(0),
        latest_start=at(4),
        contiguous=False,
    )
    result = solved(Problem(hours(6), one_site(shiftable_loads=(interruptible,)), prices=prices))
    np.testing.assert_allclose(result.power_kw["pump"].to_numpy(), [0, 0, 0, 1, 1, 0], atol=1e-6)
    assert result.objective == pytest.approx(0.3)


def test_curtailment_rebounds_and_respects_event_length() -> None:
    load = CurtailableLoad(
        "hvac",
        "s1",
        baseline_kw=[2.0] * 6,
        max_curtail_frac=0.5,
        max_event_h=1.0,
        comfort_cost_per_kwh=0.0,
        rebound_frac=1.0,
        p_max_kw=3.0,
    )
    request = CapacityRequest("r", at(1), at(3), feeder="F-1", kw=1.0, shortfall_price_per_kwh=10.0)
    result = solved(Problem(hours(6), one_site(curtailable_loads=(load,)), requests=(request,)))
    p = result.power_kw["hvac"].to_numpy()
    assert p.sum() == pytest.approx(12.0)  # all shed energy comes back
    # Any two consecutive hours shed at most one hour's worth (a 1 h event limit).
    shed = np.clip(2.0 - p, 0, None)
    assert all(shed[t] + shed[t + 1] <= 1.0 + 1e-6 for t in range(5))
    assert result.requests[0].shortfall_kwh == pytest.approx(1.0)


def test_heat_pump_preheats_before_an_event() -> None:
    pump = HeatPump(
        "hp",
        "s1",
        p_max_kw=3.0,
        cop=3.0,
        thermal_capacity_kwh_per_c=5.0,
        heat_loss_kw_per_c=0.2,
        outdoor_temp_c=[0.0] * 6,
        temp_initial_c=20.0,
        temp_min_c=19.0,
        temp_max_c=22.0,
        comfort_cost_per_ch=5.0,
    )
    request = CapacityRequest("r", at(3), at(5), feeder="F-1", kw=1.0, shortfall_price_per_kwh=5.0)
    result = solved(
        Problem(
            hours(6), one_site(heat_pumps=(pump,)), prices=Prices([0.1] * 6), requests=(request,)
        )
    )
    temps = result.state["heat_pump_temp_c"]["hp"].to_numpy()
    assert temps.min() >= 19.0 - 1e-6
    assert result.requests[0].shortfall_kwh == pytest.approx(0.0, abs=1e-6)
    assert temps[2] > 20.0  # stored heat before the event


def test_pv_is_curtailed_when_export_is_capped() -> None:
    site = Site("s1", "F-1", export_max_kw=2.0)
    pv = PhotovoltaicSystem("pv", "s1", forecast_kw=[0.0, 5.0, 1.0])
    fleet = one_site(pv_systems=(pv,))
    fleet = type(fleet)(sites=(site,), feeders=fleet.feeders, pv_systems=fleet.pv_systems)
    result = solved(
        Problem(hours(3), fleet, prices=Prices([0.1, 0.1, 0.1], export_price_per_kwh=[0.05] * 3))
    )
    np.testing.assert_allclose(result.power_kw["pv"].to_numpy(), [0.0, -2.0, -1.0], atol=1e-6)
    assert result.violations_kw.empty


def test_pv_curtailed_at_negative_prices() -> None:
    pv = PhotovoltaicSystem("pv", "s1", forecast_kw=[4.0, 4.0])
    prices = Prices([0.1, 0.1], export_price_per_kwh=[-0.05, 0.05])
    result = solved(Problem(hours(2), one_site(pv_systems=(pv,)), prices=prices))
    np.testing.assert_allclose(result.power_kw["pv"].to_numpy(), [0.0, -4.0], atol=1e-6)


def test_milp_battery_never_charges_and_discharges_at_once() -> None:
    # Negative prices make burning energy pay: the LP may charge and discharge in the
    # same interval; the MILP may not.
    fleet = one_site(
        batteries=(battery(soc_initial_frac=0.5, charge_efficiency=0.9, discharge_efficiency=0.9),)
    )
    prices = Prices([-1.0, -1.0], export_price_per_kwh=[-1.0, -1.0])
    milp = solved(Problem(hours(2), fleet, prices=prices, integer=True))
    assert milp.status == "optimal" and milp.mip_gap is not None and milp.mip_gap <= 1e-4
    p = milp.power_kw["b1"].to_numpy()
    soc = 5.0 + np.cumsum(0.9 * np.clip(p, 0, None) - np.clip(-p, 0, None) / 0.9)
    np.testing.assert_allclose(milp.state["battery_soc_kwh"]["b1"].to_numpy(), soc, atol=1e-6)
    assert milp.notes == []
    lp = plan(Problem(hours(2), fleet, prices=prices), method=FORMULATION[0])
    assert lp.objective <= milp.objective + 1e-9
    assert any("charged and discharged at once" in note for note in lp.notes)


def test_milp_request_has_no_duals() -> None:
    fleet = one_site(batteries=(battery(soc_initial_frac=1.0),))
    request = CapacityRequest("r1", at(0), at(1), feeder="F-1", kw=8.0)
    result = solved(Problem(hours(2), fleet, requests=(request,), integer=True))
    assert math.isnan(result.requests[0].marginal_cost_per_kw.iloc[0])
    assert result.requests[0].shortfall_kw.iloc[0] == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("problem", "subject", "field"),
    [
        (
            lambda: Problem(
                hours(4),
                one_site(batteries=(battery(),)),
                requests=(CapacityRequest("r", at(3), at(6), feeder="F-1", kw=1.0),),
            ),
            "request r",
            "start",
        ),
        (
            lambda: Problem(
                hours(4),
                one_site(batteries=(battery(),)),
                requests=(CapacityRequest("r", at(0), at(1), feeder="F-1", kw=-2.0),),
            ),
            "request r",
            "kw",
        ),
        (
            lambda: Problem(
                hours(4),
                one_site(vehicles=(ElectricVehicle("ev9", "s1", at(3), at(1), 7.0, 10.0),)),
            ),
            "ElectricVehicle ev9",
            "departure",
        ),
        (
            lambda: Problem(hours(4), one_site(batteries=(battery("b9", site_id="nowhere"),))),
            "Battery b9",
            "site_id",
        ),
        (
            lambda: Problem(hours(4), one_site(batteries=(battery("b8", e_max_kwh=0.0),))),
            "Battery b8",
            "e_max_kwh",
        ),
        (
            lambda: Problem(
                hours(4), one_site(pv_systems=(PhotovoltaicSystem("pv", "s1", [1.0, 2.0]),))
            ),
            "PhotovoltaicSystem pv",
            "forecast_kw",
        ),
    ],
)
def test_bad_input_names_device_and_field(
    problem: Callable[[], Problem], subject: str, field: str
) -> None:
    with pytest.raises(ProblemError) as info:
        plan(problem())
    assert (subject, field) in [(p.subject, p.field) for p in info.value.problems]


def test_site_without_feeder_is_refused() -> None:
    fleet = one_site(batteries=(battery(),))
    fleet = type(fleet)(sites=(Site("s1", ""),), batteries=fleet.batteries)
    with pytest.raises(ProblemError, match="site s1: feeder: is required"):
        plan(Problem(hours(2), fleet))


def test_fifteen_minute_resolution_scales_energy() -> None:
    horizon = hours(1)
    horizon = type(horizon)(START, 4, pd.Timedelta("15min"))
    ev = ElectricVehicle(
        "ev1", "s1", at(0), at(1), p_max_kw=4.0, energy_required_kwh=2.0, charge_efficiency=1.0
    )
    result = solved(Problem(horizon, one_site(vehicles=(ev,)), prices=Prices([0.4, 0.1, 0.2, 0.3])))
    np.testing.assert_allclose(result.power_kw["ev1"].to_numpy(), [0, 4, 4, 0], atol=1e-6)
    assert result.objective == pytest.approx(0.25 * (4 * 0.1 + 4 * 0.2))
