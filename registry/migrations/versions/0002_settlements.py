"""settlements: reward epochs (an outbox) and their rewards

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlements",
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("program_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("total_units", sa.String(length=80), nullable=False),
        sa.Column("leaves", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("distributor", sa.String(length=42), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("epoch", name=op.f("pk_settlements")),
    )
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlements_status"), ["status"], unique=False)

    op.create_table(
        "settlement_rewards",
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("leaf_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("device_id", sa.String(length=66), nullable=False),
        sa.Column("owner_address", sa.String(length=42), nullable=False),
        sa.Column("amount_units", sa.String(length=80), nullable=False),
        sa.Column("delivered_kwh", sa.Float(), nullable=False),
        sa.Column("availability", sa.Float(), nullable=False),
        sa.Column("data_quality", sa.Float(), nullable=False),
        sa.Column("contribution_kwh", sa.Float(), nullable=False),
        sa.Column("proof", sa.JSON(), nullable=False),
        sa.Column("claim_tx", sa.String(length=66), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["epoch"], ["settlements.epoch"], name=op.f("fk_settlement_rewards_epoch_settlements")
        ),
        sa.PrimaryKeyConstraint("epoch", "leaf_index", name=op.f("pk_settlement_rewards")),
    )
    with op.batch_alter_table("settlement_rewards", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_rewards_device_id"), ["device_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("settlement_rewards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_rewards_device_id"))
    op.drop_table("settlement_rewards")
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlements_status"))
    op.drop_table("settlements")
