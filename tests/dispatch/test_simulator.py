"""Simulated devices behind real openleadr VENs, against a real VTN over loopback."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from dispatch.simulator import (
    BatteryModel,
    EVModel,
    FleetSpec,
    LoadModel,
    Misbehaviour,
    Scheduled,
    SimulatedVen,
    build_fleet,
    household_shape,
    start_fleet,
    stop_fleet,
)
from dispatch.vtn import Vtn
from tests.conftest import free_port
from tests.dispatch.test_vtn import _wait

NOW = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)


def test_battery_stays_within_its_energy_and_power() -> None:
    battery = BatteryModel(capacity_kwh=10.0, p_max_kw=5.0, soc=0.5, efficiency=1.0)
    assert battery.step(NOW, 0.5, 8.0) == 5.0  # power limit
    assert battery.soc == pytest.approx(0.75)
    assert battery.step(NOW, 1.0, 5.0) == pytest.approx(2.5)  # only 2.5 kWh of room left
    assert battery.soc == pytest.approx(1.0)
    # Down to the 10% reserve: 9 kWh in one hour at most, at 5 kW for one hour.
    assert battery.step(NOW, 1.0, -5.0) == -5.0
    assert battery.step(NOW, 1.0, -5.0) == pytest.approx(-4.0)
    assert battery.soc == pytest.approx(0.1)
    assert battery.step(NOW, 1.0, None) == 0.0


def test_ev_charges_until_its_energy_is_in_and_follows_setpoints() -> None:
    ev = EVModel(p_max_kw=7.0, energy_kwh=10.0)
    assert ev.baseline_kw(NOW) == 7.0
    assert ev.step(NOW, 1.0, 2.0) == 2.0
    assert ev.step(NOW, 1.0, None) == 7.0
    assert ev.step(NOW, 1.0, None) == pytest.approx(1.0)  # the last kWh
    assert ev.soc_frac == pytest.approx(1.0)
    assert ev.step(NOW, 1.0, None) == 0.0


def test_household_load_follows_a_real_day_and_curtails_to_its_floor() -> None:
    shape = household_shape(day_of_year=200, seed=3)
    assert len(shape) == 24 and min(shape) >= 0 and max(shape) > 0.2
    load = LoadModel(shape, curtailable_frac=0.25)
    at = NOW.replace(hour=5, minute=30)
    expected = (shape[5] + shape[6]) / 2
    assert load.baseline_kw(at) == pytest.approx(expected)
    assert load.step(at, 0.25, 0.0) == pytest.approx(0.75 * expected)
    assert load.step(at, 0.25, None) == pytest.approx(expected)


def test_misbehaviour_names_the_field_out_of_range() -> None:
    with pytest.raises(ValueError, match="opt_out"):
        Misbehaviour(opt_out=1.5)
    with pytest.raises(ValueError, match="delay_s"):
        Misbehaviour(delay_s=-1)


def test_partial_delivery_and_delay_shape_the_ground_truth() -> None:
    ven = SimulatedVen(
        "ven-x",
        "http://127.0.0.1:1/none",
        BatteryModel(10.0, 5.0, soc=0.5, efficiency=1.0),
        behaviour=Misbehaviour(partial=0.5, delay_s=60),
    )
    ven.events["e"] = Scheduled("e", 0, [(NOW, NOW + timedelta(minutes=30), -4.0)])
    ven._tick(NOW, 0.0)
    assert ven.power_kw == 0.0
    ven._tick(NOW + timedelta(seconds=30), 30 / 3600)  # not yet: 60 s late
    assert ven.power_kw == 0.0
    ven._tick(NOW + timedelta(minutes=10), 570 / 3600)
    assert ven.power_kw == pytest.approx(-2.0)  # half of the -4 kW asked
    assert ven.delivered_kwh(NOW, NOW + timedelta(minutes=10)) == pytest.approx(2.0 * 570 / 3600)


def test_a_simulated_fleet_registers_answers_follows_and_reports() -> None:
    async def scenario() -> None:
        names = [f"ven-{i:02d}" for i in range(8)]
        readings: dict[str, list[float]] = {}

        statuses: dict[str, dict[str, object]] = {}

        async def on_readings(
            ven_id: str, values: list[tuple[datetime, float]], status: dict[str, object]
        ) -> None:
            readings.setdefault(ven_id, []).extend(v for _, v in values)
            statuses[ven_id] = status

        vtn = Vtn(
            {n: n for n in names}.get,
            port=free_port(),
            poll_interval_s=1,
            report_interval_s=1,
            on_readings=on_readings,
        )
        await vtn.start()
        spec = FleetSpec(
            8, battery_share=1.0, ev_share=0.0, seed=7, behaviour=Misbehaviour(opt_out=0.4)
        )
        vens = build_fleet(spec, names, vtn.url, report_interval_s=1, tick_s=0.2)
        try:
            await start_fleet(vens)
            assert all(v.online for v in vens)
            start = datetime.now(UTC) + timedelta(seconds=2)
            for ven in vens:
                vtn.send_setpoints(ven.ven_name, start, timedelta(seconds=30), [-2.0])
            assert await _wait(lambda: len(vtn.responses) == len(vens))
            answered = {r.ven_id: r.opt_type for r in vtn.responses}
            assert answered == {v.ven_name: next(iter(v.answers.values())) for v in vens}
            assert 0 < sum(a == "optOut" for a in answered.values()) < len(vens)
            await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 1.5)
            for ven in vens:
                expected = -2.0 if answered[ven.ven_name] == "optIn" else 0.0
                assert ven.power_kw == pytest.approx(expected)
            # Reports reach the VTN with the devices' power [kW].
            assert await _wait(lambda: any(v < -1.9 for r in readings.values() for v in r))
            assert set(readings) <= set(names)
            # Status (TELEMETRY_STATUS) rides along: online, and the battery's SoC.
            assert await _wait(lambda: any("soc_frac" in s for s in statuses.values()))
            for ven_id, status in statuses.items():
                if "soc_frac" in status:
                    ven = next(v for v in vens if v.ven_name == ven_id)
                    assert status["online"] is True
                    assert status["soc_frac"] == pytest.approx(ven.model.soc_frac, abs=0.05)
        finally:
            await stop_fleet(vens)
            await vtn.stop()

    asyncio.run(scenario())


def test_an_offline_ven_never_registers() -> None:
    ven = SimulatedVen(
        "ven-off",
        "http://127.0.0.1:1/none",
        EVModel(7.0, 10.0),
        behaviour=Misbehaviour(offline=1.0),
        rng=random.Random(1),
    )
    asyncio.run(ven.start())
    assert ven.offline and not ven.online and ven.client is None


def test_a_ven_keeps_trying_until_the_vtn_answers() -> None:
    async def scenario() -> None:
        port = free_port()
        vtn = Vtn({"ven-late": "ven-late"}.get, port=port, poll_interval_s=1)
        ven = SimulatedVen("ven-late", vtn.url, EVModel(7.0, 10.0), report_interval_s=1, tick_s=0.2)
        starting = asyncio.get_running_loop().create_task(ven.start(wait_s=20, retry_s=0.5))
        await asyncio.sleep(1.2)  # the VTN comes up after the VEN's first attempts
        assert not ven.online
        await vtn.start()
        try:
            await asyncio.wait_for(starting, 10)
            assert ven.online
        finally:
            await ven.stop()
            await vtn.stop()

    asyncio.run(scenario())
