"""dispatch events: OpenADR events sent to VENs and their log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispatch_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("ven_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=66), nullable=False),
        sa.Column("capacity_request_id", sa.String(length=64), nullable=True),
        sa.Column("signal_name", sa.String(length=32), nullable=False),
        sa.Column("intervals", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_dispatch_events")),
    )
    with op.batch_alter_table("dispatch_events", schema=None) as batch_op:
        for column in ("ven_id", "device_id", "capacity_request_id"):
            batch_op.create_index(
                batch_op.f(f"ix_dispatch_events_{column}"), [column], unique=False
            )
    op.create_table(
        "dispatch_log",
        sa.Column("entry_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_dispatch_log")),
    )
    with op.batch_alter_table("dispatch_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dispatch_log_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dispatch_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispatch_log_event_id"))
    op.drop_table("dispatch_log")
    with op.batch_alter_table("dispatch_events", schema=None) as batch_op:
        for column in ("capacity_request_id", "device_id", "ven_id"):
            batch_op.drop_index(batch_op.f(f"ix_dispatch_events_{column}"))
    op.drop_table("dispatch_events")
