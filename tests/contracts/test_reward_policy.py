"""Contributions and rewards of an epoch, computed before anything goes on chain."""

from __future__ import annotations

import pytest

from contracts.chain import Chain
from contracts.rewards import (
    DeviceEpoch,
    RewardPolicy,
    availability,
    contribution_kwh,
    data_quality,
    epoch_rewards,
)
from registry.identity import device_id

OWNER = "0x" + "ab" * 20


def record(
    serial: str, kwh: float, online: float = 1.0, quality: float = 1.0, owner: str | None = OWNER
) -> DeviceEpoch:
    return DeviceEpoch(device_id("Tesla", "Powerwall 2", serial), owner, kwh, online, quality)


def test_contribution_weighs_availability_and_data() -> None:
    policy = RewardPolicy(
        rate_ovpp_per_kwh=2.0, w_delivery=0.6, w_availability=0.3, w_data_quality=0.1
    )
    assert contribution_kwh(record("A", 10.0), policy) == pytest.approx(10.0)
    assert contribution_kwh(record("A", 10.0, online=0.5, quality=0.0), policy) == pytest.approx(
        7.5
    )
    assert contribution_kwh(record("A", -3.0), policy) == 0.0  # no credit for adding load
    assert availability(90, 96) == pytest.approx(0.9375)
    assert data_quality(720, 86_400, 60) == pytest.approx(0.5)
    assert data_quality(3_000, 86_400, 60) == 1.0  # duplicates never count above 100%
    with pytest.raises(ValueError, match="weights"):
        RewardPolicy(1.0, 0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"availability 1\.5"):
        contribution_kwh(record("A", 1.0, online=1.5), policy)


def test_epoch_rewards_are_exact_ordered_and_explained() -> None:
    policy = RewardPolicy(rate_ovpp_per_kwh=0.1)
    records = [record("C", 3.0), record("A", 1.25), record("B", 0.0), record("D", 2.0, owner=None)]
    result = epoch_rewards(5, records, policy)
    ids = sorted(r.device_id for r in records)
    paid = [r for r in records if r.device_id in (records[0].device_id, records[1].device_id)]
    assert [r.index for r in result.rewards] == [0, 1]
    assert [("0x" + r.device_id.hex()) for r in result.rewards] == sorted(p.device_id for p in paid)
    amounts = {("0x" + r.device_id.hex()): r.amount for r in result.rewards}
    assert amounts[records[0].device_id] == 3 * 10**17  # 3 kWh x 0.1 OVPP, 18 decimals, exact
    assert amounts[records[1].device_id] == 125 * 10**15
    assert result.total == sum(amounts.values())
    assert result.skipped == {
        records[2].device_id: "nothing delivered",
        records[3].device_id: "no owner address to pay",
    }
    assert len(ids) == 4
    with pytest.raises(ValueError, match="listed twice"):
        epoch_rewards(5, [record("A", 1.0), record("A", 2.0)], policy)


def test_computed_rewards_are_claimable(chain: Chain, accounts: dict[str, str]) -> None:
    policy = RewardPolicy(rate_ovpp_per_kwh=0.5)
    records = [record(f"S{i}", 1.0 + i, owner=accounts["owner"]) for i in range(5)]
    result = epoch_rewards(11, records, policy)
    tree, _ = chain.post_epoch(accounts["settler"], 11, result.rewards)
    for reward in result.rewards:
        chain.claim(accounts["other"], reward, tree.proof(reward.index))
    assert chain.balance(accounts["owner"]) == result.total == int(0.5 * 15 * 10**18)
