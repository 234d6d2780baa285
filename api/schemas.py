"""Response and request bodies of the HTTP API (inputs the registry validates itself
are in ``registry.schemas``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

#: Earliest and latest time the API accepts (beyond them date arithmetic overflows).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return value


#: A time with its UTC offset, within the years the service handles.
Timestamp = Annotated[AwareDatetime, AfterValidator(_in_range)]


class DeliveryRecord(BaseModel):
    """What a device was asked for and what it delivered, over its life."""

    events_dispatched: int
    energy_requested_kwh: float
    energy_delivered_kwh: float
    delivery_ratio: float | None = Field(
        description="delivered / requested; null until energy has been requested"
    )


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    device_id: str
    device_type: str
    make: str
    model: str
    serial: str
    owner_name: str
    owner_address: str | None
    p_max_kw: float
    p_min_kw: float
    e_max_kwh: float | None
    response_time_s: float | None
    telemetry_interval_s: float | None
    site_id: str
    site_address: str | None
    lat: float | None
    lon: float | None
    feeder: str
    region: str
    utility: str | None
    protocols: list[str]
    status: str
    created_at: datetime
    updated_at: datetime
    delivery: DeliveryRecord

    @classmethod
    def of(cls, device: Any) -> DeviceOut:
        requested = device.energy_requested_kwh or 0.0
        delivered = device.energy_delivered_kwh or 0.0
        record = DeliveryRecord(
            events_dispatched=device.events_dispatched or 0,
            energy_requested_kwh=requested,
            energy_delivered_kwh=delivered,
            delivery_ratio=delivered / requested if requested > 0 else None,
        )
        fields = {name: getattr(device, name) for name in cls.model_fields if name != "delivery"}
        return cls(**fields, delivery=record)


class DeviceList(BaseModel):
    items: list[DeviceOut]
    total: int
    limit: int
    offset: int


class BulkDevicesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    devices: list[dict[str, Any]] = Field(
        min_length=1, description="Device objects (fields of POST /v1/devices)"
    )
    atomic: bool = Field(False, description="Store nothing if any row is bad")


class RowProblem(BaseModel):
    field: str
    message: str
    value: Any = None
    limit: Any = None


class BulkRowError(BaseModel):
    row: int
    device_id: str | None
    problems: list[RowProblem]


class BulkDevicesOut(BaseModel):
    created: list[str]
    errors: list[BulkRowError]


class ProgramOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    program_id: str
    name: str
    utility: str
    regions: list[str]
    feeders: list[str]
    device_types: list[str]
    min_power_kw: float | None
    min_energy_kwh: float | None
    protocols: list[str]
    max_response_time_s: float | None
    max_telemetry_interval_s: float | None
    incentive_ovpp_per_kwh: float
    connection_fee_ovpp: float
    status: str
    created_at: datetime
    updated_at: datetime


class EnrollmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    device_id: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    program_id: str = Field(min_length=1, max_length=64)
    fee_payer: Literal["customer", "program"] = Field(
        "customer",
        description="Who pays the program's connection fee: the device's owner address "
        "or the program administrator's (fee_payer_address)",
    )
    fee_payer_address: str | None = Field(
        None, pattern=r"^0x[0-9a-fA-F]{40}$", description="The administrator's address"
    )


class CheckOut(BaseModel):
    check: str
    field: str
    device_value: Any
    program_limit: Any
    passed: bool
    message: str


class ConnectionOut(BaseModel):
    """What the device needs to receive the program's events (``ven_secret`` shown once)."""

    enrollment_id: int
    device_id: str
    program_id: str
    ven_id: str
    vtn_url: str
    auth: dict[str, str]
    enrolled_at: datetime
    checks: list[CheckOut]


class EligibilityOut(BaseModel):
    device_id: str
    program_id: str
    eligible: bool
    checks: list[CheckOut]


class EnrollmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    enrollment_id: int
    device_id: str
    program_id: str
    ven_id: str
    enrolled_at: datetime
    ended_at: datetime | None
    end_reason: str | None


class VenCertificateIn(BaseModel):
    """The certificate an enrolment's VEN connects and signs with (signed mode): the
    certificate itself, or its OpenADR fingerprint."""

    model_config = ConfigDict(extra="forbid")

    certificate_pem: str | None = Field(
        None, max_length=20_000, description="The VEN's X.509 certificate, PEM"
    )
    fingerprint: str | None = Field(
        None,
        max_length=64,
        description="Its OpenADR fingerprint: the last ten bytes of the SHA-256 of the DER "
        "certificate, hex pairs separated by colons (as openleadr prints it)",
    )


class VenCertificateOut(BaseModel):
    enrollment_id: int
    ven_id: str
    fingerprint: str


class LinkOut(BaseModel):
    """A link open at the instant asked about."""

    model_config = ConfigDict(from_attributes=True)

    enrollment_id: int
    device_id: str
    program_id: str
    enrolled_at: datetime = Field(validation_alias="at")


class LogEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    enrollment_id: int
    device_id: str
    program_id: str
    action: str
    at: datetime
    actor: str | None
    reason: str | None


class UnenrollIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=256)


class TelemetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    readings: list[dict[str, Any]] = Field(
        min_length=1,
        description="Readings: device_id, timestamp (ISO 8601 with offset), p_kw [kW, "
        "positive = drawn from the grid], optional soc_frac [0-1] and online (default true)",
    )


class RejectedOut(BaseModel):
    row: int
    problems: list[RowProblem]


class TelemetryOut(BaseModel):
    received: int
    stored: int
    duplicates: int
    rejected: list[RejectedOut]


class ReadingOut(BaseModel):
    timestamp: datetime
    p_kw: float
    soc_frac: float | None
    online: bool


class TelemetrySeries(BaseModel):
    device_id: str
    readings: list[ReadingOut]


class CapacityRow(BaseModel):
    region: str | None = None
    feeder: str | None = None
    device_type: str | None = None
    devices: int
    p_max_kw: float
    p_min_kw: float
    flex_kw: float
    e_max_kwh: float
    enrolled_devices: int
    enrolled_flex_kw: float
    online_devices: int
    online_flex_kw: float
    available_devices: int
    available_flex_kw: float
    connected_devices: int | None = Field(
        None, description="Enrolled through a VEN the VTN hears from now (none without a VTN)"
    )
    connected_flex_kw: float | None = None


class ForecastIn(BaseModel):
    """A load forecast for one device, site, feeder or region from its stored telemetry."""

    model_config = ConfigDict(extra="forbid")

    device_id: str | None = Field(None, description="Forecast one device")
    site_id: str | None = Field(None, description="...or the sum of a site's devices")
    feeder: str | None = Field(None, description="...or the sum of a feeder's devices")
    region: str | None = Field(None, description="...or the sum of a region's devices")
    cutoff: Timestamp | None = Field(
        None, description="Issue time (default now); the forecast starts here"
    )
    horizon: str = Field("1D", description="Length, e.g. 1D or 6h (at most 7 days)")
    freq: str = Field("15min", description="Resolution: 15min, 30min, 1h, ...")
    history_days: int = Field(90, ge=3, le=400, description="Days of telemetry to learn from")
    model: Literal["auto", "gbm", "linear", "profile"] = Field(
        "auto",
        description="auto: gradient boosting when the history is long enough, else profile",
    )
    timezone: str = Field("UTC", description="Local time zone of the scope (calendar features)")
    country: str | None = Field(None, description="ISO country code for public holidays")


class ForecastPoint(BaseModel):
    start: datetime
    p10_kw: float
    p50_kw: float
    p90_kw: float


class ForecastOut(BaseModel):
    scope: dict[str, str]
    devices: int
    method: str
    cutoff: datetime
    freq: str
    horizon: str
    history: dict[str, Any]
    notes: list[str]
    intervals: list[ForecastPoint]
