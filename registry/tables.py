"""SQLAlchemy tables of the registry. The migrations in ``registry/migrations`` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned time-zone aware.

    SQLite keeps no offset, PostgreSQL keeps ``timestamptz``; both come back as UTC.
    Naive datetimes are refused: every timestamp crossing a boundary carries its zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must carry a UTC offset")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Device(Base):
    """A distributed energy resource and its digital identity."""

    __tablename__ = "devices"

    #: Compact surrogate key, used where ids repeat millions of times (telemetry).
    device_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(66), unique=True)
    device_type: Mapped[str] = mapped_column(String(32), index=True)
    make: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(64))
    owner_name: Mapped[str] = mapped_column(String(128), index=True)
    owner_address: Mapped[str | None] = mapped_column(String(42))
    p_max_kw: Mapped[float] = mapped_column(Float)
    p_min_kw: Mapped[float] = mapped_column(Float)
    e_max_kwh: Mapped[float | None] = mapped_column(Float)
    response_time_s: Mapped[float | None] = mapped_column(Float)
    telemetry_interval_s: Mapped[float | None] = mapped_column(Float)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    site_address: Mapped[str | None] = mapped_column(String(256))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    feeder: Mapped[str] = mapped_column(String(64), index=True)
    region: Mapped[str] = mapped_column(String(64), index=True)
    utility: Mapped[str | None] = mapped_column(String(128))
    protocols: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    events_dispatched: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    energy_requested_kwh: Mapped[float] = mapped_column(Float, server_default=text("0"))
    energy_delivered_kwh: Mapped[float] = mapped_column(Float, server_default=text("0"))


class Program(Base):
    """A utility program and the capabilities it requires."""

    __tablename__ = "programs"

    program_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    utility: Mapped[str] = mapped_column(String(128))
    regions: Mapped[list[str]] = mapped_column(JSON)
    feeders: Mapped[list[str]] = mapped_column(JSON)
    device_types: Mapped[list[str]] = mapped_column(JSON)
    min_power_kw: Mapped[float | None] = mapped_column(Float)
    min_energy_kwh: Mapped[float | None] = mapped_column(Float)
    protocols: Mapped[list[str]] = mapped_column(JSON)
    max_response_time_s: Mapped[float | None] = mapped_column(Float)
    max_telemetry_interval_s: Mapped[float | None] = mapped_column(Float)
    incentive_ovpp_per_kwh: Mapped[float] = mapped_column(Float)
    connection_fee_ovpp: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Enrollment(Base):
    """A link between a device and a program; open while ``ended_at`` is null."""

    __tablename__ = "enrollments"
    __table_args__ = (
        Index(
            "uq_enrollments_open_link",
            "device_id",
            "program_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    enrollment_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), index=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.program_id"), index=True)
    ven_id: Mapped[str] = mapped_column(String(64))
    credential_hash: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(256))
    #: SHA-256 fingerprint of the VEN's client certificate (signed mode), as openleadr
    #: prints it: ten colon-separated hex pairs.
    ven_cert_fingerprint: Mapped[str | None] = mapped_column(String(64))


class EnrollmentLog(Base):
    """Append-only log of every link formed or ended (database triggers refuse edits)."""

    __tablename__ = "enrollment_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    enrollment_id: Mapped[int] = mapped_column(Integer, index=True)
    device_id: Mapped[str] = mapped_column(String(66), index=True)
    program_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(256))


class Reading(Base):
    """One telemetry reading of one device, unique on (device, ts).

    Keyed by the device's 4-byte ``device_key`` rather than its 66-character id, which
    keeps the key index small. No foreign key to ``devices``: every batch is checked
    against the registry before it is stored and devices are retired, never deleted,
    so the key would only cost (a third of the insert time on PostgreSQL). On SQLite
    the table is clustered on its key (``WITHOUT ROWID``), which is how it is read:
    one device, a time range.
    """

    __tablename__ = "telemetry"
    __table_args__ = ({"sqlite_with_rowid": False},)

    device_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    p_kw: Mapped[float] = mapped_column(Float)
    soc_frac: Mapped[float | None] = mapped_column(Float)
    online: Mapped[bool] = mapped_column(Boolean)


class ApiKey(Base):
    """An API key, stored as the SHA-256 of its secret, with the role it grants."""

    __tablename__ = "api_keys"

    key_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(128))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Settlement(Base):
    """One settlement epoch, written before any transaction is sent (an outbox).

    ``status``: ``pending`` (computed, not sent), ``sent`` (a transaction is out:
    ``tx_hash``), ``confirmed`` (the root is on chain), ``failed`` (``last_error`` says
    why; sending again resumes). Token amounts are integers of up to 78 digits (the
    token's smallest unit), kept as decimal text.
    """

    __tablename__ = "settlements"

    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    program_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    root: Mapped[str] = mapped_column(String(66))
    total_units: Mapped[str] = mapped_column(String(80))
    leaves: Mapped[int] = mapped_column(Integer)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    distributor: Mapped[str] = mapped_column(String(42))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    skipped: Mapped[dict[str, Any]] = mapped_column(JSON)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SettlementReward(Base):
    """A device's reward in an epoch: its Merkle leaf, proof and claim."""

    __tablename__ = "settlement_rewards"

    epoch: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("settlements.epoch"), primary_key=True, autoincrement=False
    )
    leaf_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    device_id: Mapped[str] = mapped_column(String(66), index=True)
    owner_address: Mapped[str] = mapped_column(String(42))
    amount_units: Mapped[str] = mapped_column(String(80))
    delivered_kwh: Mapped[float] = mapped_column(Float)
    availability: Mapped[float] = mapped_column(Float)
    data_quality: Mapped[float] = mapped_column(Float)
    contribution_kwh: Mapped[float] = mapped_column(Float)
    proof: Mapped[list[str]] = mapped_column(JSON)
    claim_tx: Mapped[str | None] = mapped_column(String(66))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DispatchEvent(Base):
    """An OpenADR event sent to a device's VEN, and where it stands.

    ``status``: ``pending`` (sent, no answer yet), ``opted_in``, ``opted_out``,
    ``cancelled``. ``intervals`` holds ``{"start", "minutes", "value"}`` per interval:
    setpoints [kW] for ``LOAD_DISPATCH``, levels for ``SIMPLE``.
    """

    __tablename__ = "dispatch_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ven_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(66), index=True)
    capacity_request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    signal_name: Mapped[str] = mapped_column(String(32))
    intervals: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DispatchLog(Base):
    """Everything that happened to events: sent, opted in or out, cancelled."""

    __tablename__ = "dispatch_log"

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class Job(Base):
    """Long work run in the background: planning a capacity request or a schedule, a
    forecast backtest, sending a settlement epoch on chain.

    ``status``: ``queued``, ``running``, ``done``, ``failed`` (``error`` says why),
    ``cancelled``. A job found ``running`` when the service starts was cut off by a
    stop: it is queued again (``attempts`` counts starts) or, past its attempts, failed.
    """

    __tablename__ = "jobs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, server_default=text("0"))
    message: Mapped[str | None] = mapped_column(String(512))
    error: Mapped[str | None] = mapped_column(String(2048))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: What the job was asked (jobs whose subject holds nothing else, e.g. backtests,
    #: or a settlement's epoch and capacity request).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: What it found, for the same jobs.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CapacityRequestRow(Base):
    """A grid operator's capacity request and where it stands.

    ``status``: ``planning``, ``planned`` (waiting for approval), ``dispatched``,
    ``delivering``, ``delivered``, ``settled``, ``cancelled``, ``failed`` (``reason``).
    ``plan`` holds the plan summary (devices called, cost); ``intervals`` holds per
    interval ``start``, ``requested_kw``, ``planned_kw``, ``shortfall_kw``,
    ``reasons``, ``committed_kw`` and ``delivered_kw``.
    """

    __tablename__ = "capacity_requests"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    feeder: Mapped[str | None] = mapped_column(String(64), index=True)
    region: Mapped[str | None] = mapped_column(String(64), index=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    kw: Mapped[float | None] = mapped_column(Float)
    cap_kw: Mapped[float | None] = mapped_column(Float)
    price_per_kwh: Mapped[float] = mapped_column(Float)
    shortfall_price_per_kwh: Mapped[float] = mapped_column(Float)
    auto_dispatch: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(2048))
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    intervals: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    settlement_epoch: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CapacityRequestLog(Base):
    """A capacity request's history: accepted, planned, each dispatch round,
    approval, cancellation, measurement, settlement."""

    __tablename__ = "capacity_request_log"

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class Schedule(Base):
    """An aggregator's day-ahead schedule: what was asked and, once planned, the result
    (per device and in aggregate)."""

    __tablename__ = "schedules"

    schedule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(2048))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
