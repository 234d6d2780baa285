"""registry: devices, programs, enrollments, telemetry, api keys

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    op.create_table(
        "devices",
        sa.Column("device_key", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=66), nullable=False),
        sa.Column("device_type", sa.String(length=32), nullable=False),
        sa.Column("make", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("owner_name", sa.String(length=128), nullable=False),
        sa.Column("owner_address", sa.String(length=42), nullable=True),
        sa.Column("p_max_kw", sa.Float(), nullable=False),
        sa.Column("p_min_kw", sa.Float(), nullable=False),
        sa.Column("e_max_kwh", sa.Float(), nullable=True),
        sa.Column("response_time_s", sa.Float(), nullable=True),
        sa.Column("telemetry_interval_s", sa.Float(), nullable=True),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("site_address", sa.String(length=256), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("feeder", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("utility", sa.String(length=128), nullable=True),
        sa.Column("protocols", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "events_dispatched",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "energy_requested_kwh",
            sa.Float(),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "energy_delivered_kwh",
            sa.Float(),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("device_key", name=op.f("pk_devices")),
        sa.UniqueConstraint("device_id", name=op.f("uq_devices_device_id")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_device_type"), ["device_type"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_feeder"), ["feeder"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_owner_name"), ["owner_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_region"), ["region"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_status"), ["status"], unique=False)

    op.create_table(
        "enrollment_log",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=66), nullable=False),
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_enrollment_log")),
    )
    with op.batch_alter_table("enrollment_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollment_log_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_enrollment_log_device_id"), ["device_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_enrollment_log_enrollment_id"),
            ["enrollment_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_enrollment_log_program_id"), ["program_id"], unique=False
        )

    op.create_table(
        "programs",
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("utility", sa.String(length=128), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("feeders", sa.JSON(), nullable=False),
        sa.Column("device_types", sa.JSON(), nullable=False),
        sa.Column("min_power_kw", sa.Float(), nullable=True),
        sa.Column("min_energy_kwh", sa.Float(), nullable=True),
        sa.Column("protocols", sa.JSON(), nullable=False),
        sa.Column("max_response_time_s", sa.Float(), nullable=True),
        sa.Column("max_telemetry_interval_s", sa.Float(), nullable=True),
        sa.Column("incentive_ovpp_per_kwh", sa.Float(), nullable=False),
        sa.Column("connection_fee_ovpp", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_programs")),
    )
    op.create_table(
        "enrollments",
        sa.Column("enrollment_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=66), nullable=False),
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("ven_id", sa.String(length=64), nullable=False),
        sa.Column("credential_hash", sa.String(length=64), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.device_id"],
            name=op.f("fk_enrollments_device_id_devices"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.program_id"],
            name=op.f("fk_enrollments_program_id_programs"),
        ),
        sa.PrimaryKeyConstraint("enrollment_id", name=op.f("pk_enrollments")),
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollments_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_enrollments_program_id"), ["program_id"], unique=False)
        batch_op.create_index(
            "uq_enrollments_open_link",
            ["device_id", "program_id"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )

    op.create_table(
        "telemetry",
        sa.Column("device_key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("p_kw", sa.Float(), nullable=False),
        sa.Column("soc_frac", sa.Float(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("device_key", "ts", name=op.f("pk_telemetry")),
        sqlite_with_rowid=False,
    )

    _append_only("enrollment_log")


def _append_only(table: str) -> None:
    """Make ``table`` append-only: the database itself refuses UPDATE and DELETE."""
    message = f"{table} is append-only"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS enrollment_log_append_only ON enrollment_log")
        op.execute("DROP FUNCTION IF EXISTS enrollment_log_append_only()")
    op.drop_table("telemetry")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_enrollments_open_link",
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_enrollments_program_id"))
        batch_op.drop_index(batch_op.f("ix_enrollments_device_id"))

    op.drop_table("enrollments")
    op.drop_table("programs")
    with op.batch_alter_table("enrollment_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollment_log_program_id"))
        batch_op.drop_index(batch_op.f("ix_enrollment_log_enrollment_id"))
        batch_op.drop_index(batch_op.f("ix_enrollment_log_device_id"))
        batch_op.drop_index(batch_op.f("ix_enrollment_log_at"))

    op.drop_table("enrollment_log")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_status"))
        batch_op.drop_index(batch_op.f("ix_devices_site_id"))
        batch_op.drop_index(batch_op.f("ix_devices_region"))
        batch_op.drop_index(batch_op.f("ix_devices_owner_name"))
        batch_op.drop_index(batch_op.f("ix_devices_feeder"))
        batch_op.drop_index(batch_op.f("ix_devices_device_type"))

    op.drop_table("devices")
    op.drop_table("api_keys")
