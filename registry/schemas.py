"""Validated inputs of the registry: devices, programs and their limits.

These pydantic models are shared by every edge that writes to the registry (the
HTTP API, the CSV importer, the demo fleet), so a limit is written once. Units are
in the field names; the sign convention of power is the project's: positive means
power drawn from the grid, negative power fed into it.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from registry.identity import checksum_address, normalize_part

#: Largest power rating accepted for one device [kW] (a 100 MW C&I plant).
P_LIMIT_KW = 100_000.0
#: Largest energy rating accepted for one device [kWh].
E_LIMIT_KWH = 1_000_000.0
#: Longest response or telemetry interval accepted [s] (one day).
INTERVAL_LIMIT_S = 86_400.0


class DeviceType(StrEnum):
    battery = "battery"
    ev_charger = "ev_charger"
    ev = "ev"
    pv_inverter = "pv_inverter"
    heat_pump = "heat_pump"
    thermostat = "thermostat"
    water_heater = "water_heater"
    pool_pump = "pool_pump"
    smart_meter = "smart_meter"
    c_and_i_storage = "c_and_i_storage"


#: Device types that store energy and so must state ``e_max_kwh``.
STORAGE_TYPES = frozenset({DeviceType.battery, DeviceType.c_and_i_storage, DeviceType.ev})


class Protocol(StrEnum):
    openadr_2_0b = "openadr_2.0b"
    openadr_3 = "openadr_3"
    ieee_2030_5 = "ieee_2030_5"
    ocpp_1_6j = "ocpp_1.6j"
    ocpp_2_0_1 = "ocpp_2.0.1"
    matter = "matter"


class DeviceStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    retired = "retired"


class ProgramStatus(StrEnum):
    open = "open"
    closed = "closed"


def _address(value: str | None) -> str | None:
    return None if value is None else checksum_address(value)


def _plain_text(text: str) -> str:
    """Text without control characters (NUL, line breaks, tabs), and not blank."""
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError("must not contain control characters (NUL, tabs, line breaks)")
    if not normalize_part(text):
        raise ValueError("must not be blank")
    return text


Name = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[^|]+$"), AfterValidator(_plain_text)
]
Label = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_plain_text)]
OwnerName = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_plain_text)]
Text = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_plain_text)]
PowerKw = Annotated[float, Field(ge=-P_LIMIT_KW, le=P_LIMIT_KW, allow_inf_nan=False)]
EnergyKwh = Annotated[float, Field(gt=0, le=E_LIMIT_KWH, allow_inf_nan=False)]
IntervalS = Annotated[float, Field(gt=0, le=INTERVAL_LIMIT_S, allow_inf_nan=False)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Address = Annotated[str | None, AfterValidator(_address)]


def p_min_problem(p_min_kw: float, p_max_kw: float) -> str | None:
    """Why ``p_min_kw`` does not fit ``p_max_kw``, or ``None`` when it does."""
    if p_min_kw > p_max_kw:
        return f"p_min_kw ({p_min_kw}) must not exceed p_max_kw ({p_max_kw})"
    return None


def e_max_problem(device_type: str, e_max_kwh: float | None) -> str | None:
    """Why a device lacks an energy rating it needs, or ``None``."""
    if e_max_kwh is None and device_type in STORAGE_TYPES:
        return f"e_max_kwh is required for a {device_type} (must be > 0)"
    return None


def position_problem(lat: float | None, lon: float | None) -> str | None:
    if (lat is None) != (lon is None):
        return "lat and lon must be given together"
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DeviceIn(_Strict):
    """A device to register. Its id is derived from ``make|model|serial``."""

    device_type: DeviceType
    make: Name
    model: Name
    serial: Name
    owner_name: OwnerName
    owner_address: Address = Field(None, description="EVM address of the owner (EIP-55)")
    p_max_kw: PowerKw = Field(description="Largest power drawn from the grid [kW]")
    p_min_kw: PowerKw = Field(0.0, description="Smallest power; negative = export [kW]")
    e_max_kwh: EnergyKwh | None = Field(
        None, description="Usable energy capacity [kWh]", validate_default=True
    )
    response_time_s: IntervalS | None = Field(None, description="Time to respond to an event [s]")
    telemetry_interval_s: IntervalS | None = Field(None, description="Reporting interval [s]")
    site_id: Label
    site_address: Text | None = None
    lat: Latitude | None = None
    lon: Longitude | None = Field(None, validate_default=True)
    feeder: Label
    region: Label
    utility: OwnerName | None = None
    protocols: list[Protocol] = Field(default_factory=list, max_length=len(Protocol))

    @field_validator("p_min_kw")
    @classmethod
    def _p_min(cls, value: float, info: ValidationInfo) -> float:
        p_max = info.data.get("p_max_kw")
        problem = None if p_max is None else p_min_problem(value, p_max)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("e_max_kwh", mode="after")
    @classmethod
    def _e_max(cls, value: float | None, info: ValidationInfo) -> float | None:
        device_type = info.data.get("device_type")
        problem = None if device_type is None else e_max_problem(device_type, value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("lon", mode="after")
    @classmethod
    def _position(cls, value: float | None, info: ValidationInfo) -> float | None:
        if "lat" not in info.data:  # lat itself was invalid and is reported already
            return value
        problem = position_problem(info.data["lat"], value)
        if problem:
            raise ValueError(problem)
        return value


class DeviceUpdate(_Strict):
    """A partial update. ``make``, ``model`` and ``serial`` form the id and never change."""

    owner_name: OwnerName | None = None
    owner_address: Address = None
    p_max_kw: PowerKw | None = None
    p_min_kw: PowerKw | None = None
    e_max_kwh: EnergyKwh | None = None
    response_time_s: IntervalS | None = None
    telemetry_interval_s: IntervalS | None = None
    site_id: Label | None = None
    site_address: Text | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    feeder: Label | None = None
    region: Label | None = None
    utility: OwnerName | None = None
    protocols: list[Protocol] | None = None
    status: DeviceStatus | None = Field(
        None, description="active or suspended; retire with POST /v1/devices/{id}/retire"
    )

    @field_validator("status")
    @classmethod
    def _not_retire(cls, value: DeviceStatus | None) -> DeviceStatus | None:
        if value == DeviceStatus.retired:
            raise ValueError("use POST /v1/devices/{device_id}/retire to retire a device")
        return value


class ProgramIn(_Strict):
    """A utility program and what it requires of the devices it admits.

    A requirement left empty is not checked: enrolment checks the overlap of what the
    program needs and what the device states.
    """

    program_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    name: OwnerName
    utility: OwnerName
    regions: list[Label] = Field(default_factory=list, description="Territory: regions")
    feeders: list[Label] = Field(
        default_factory=list, description="Territory: feeders", validate_default=True
    )
    device_types: list[DeviceType] = Field(min_length=1)
    min_power_kw: Annotated[float, Field(ge=0, le=P_LIMIT_KW)] | None = Field(
        None, description="Least flexible power range p_max_kw - p_min_kw [kW]"
    )
    min_energy_kwh: Annotated[float, Field(ge=0, le=E_LIMIT_KWH)] | None = None
    protocols: list[Protocol] = Field(
        default_factory=list, description="The device must speak at least one of these"
    )
    max_response_time_s: IntervalS | None = None
    max_telemetry_interval_s: IntervalS | None = None
    incentive_ovpp_per_kwh: Annotated[float, Field(ge=0, le=1_000)] = 0.0
    connection_fee_ovpp: Annotated[float, Field(ge=0, le=1_000_000)] = 0.0
    status: ProgramStatus = ProgramStatus.open

    @field_validator("feeders", mode="after")
    @classmethod
    def _territory(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value and not info.data.get("regions"):
            raise ValueError("territory: give at least one of regions or feeders")
        return value
