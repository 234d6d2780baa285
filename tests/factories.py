"""Small builders of valid inputs, so each test states only what it varies."""

from __future__ import annotations

from typing import Any

from registry.schemas import DeviceIn, ProgramIn

OWNER_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"  # an EIP-55 test vector


def device_fields(serial: str = "SN-0001", **change: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "device_type": "battery",
        "make": "Tesla",
        "model": "Powerwall 2",
        "serial": serial,
        "owner_name": "owner-a",
        "owner_address": OWNER_ADDRESS,
        "p_max_kw": 5.0,
        "p_min_kw": -5.0,
        "e_max_kwh": 13.5,
        "response_time_s": 2.0,
        "telemetry_interval_s": 60.0,
        "site_id": "site-1",
        "site_address": "1 Grid Way",
        "lat": 52.37,
        "lon": 4.89,
        "feeder": "F-12",
        "region": "North",
        "utility": "Demo Power",
        "protocols": ["openadr_2.0b"],
    }
    fields.update(change)
    return {k: v for k, v in fields.items() if v is not None}


def device_in(serial: str = "SN-0001", **change: Any) -> DeviceIn:
    return DeviceIn.model_validate(device_fields(serial, **change))


def program_fields(program_id: str = "RES-DR", **change: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "program_id": program_id,
        "name": "Residential demand response",
        "utility": "Demo Power",
        "regions": ["North"],
        "feeders": [],
        "device_types": ["battery", "heat_pump"],
        "min_power_kw": 3.0,
        "min_energy_kwh": 5.0,
        "protocols": ["openadr_2.0b"],
        "max_response_time_s": 60.0,
        "max_telemetry_interval_s": 300.0,
        "incentive_ovpp_per_kwh": 0.5,
        "connection_fee_ovpp": 0.0,
    }
    fields.update(change)
    return fields


def program_in(program_id: str = "RES-DR", **change: Any) -> ProgramIn:
    return ProgramIn.model_validate(program_fields(program_id, **change))
