"""From delivered response to the rewards of an epoch (pure: no chain, no database).

Per device and epoch, a contribution [kWh] weighs the energy it delivered by how
available it was and how good its data were, as the program defines::

    contribution = delivered_kwh * (w_delivery + w_availability * availability
                                    + w_data_quality * data_quality)

with the three weights summing to 1, so that a device online all epoch with every
reading received is credited exactly what it delivered. The reward is the program's
rate [OVPP per kWh] times the contribution, in the token's smallest unit (rounded
down, so that the epoch never pays more than its rate allows). Rewards are ordered by
device id and numbered from 0: the leaf order of the epoch's Merkle tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from eth_utils import is_address, to_checksum_address

from contracts.merkle import Reward


@dataclass(frozen=True)
class RewardPolicy:
    """How a program pays: its rate and the weights of the contribution."""

    rate_ovpp_per_kwh: float
    w_delivery: float = 0.7
    w_availability: float = 0.2
    w_data_quality: float = 0.1
    decimals: int = 18

    def __post_init__(self) -> None:
        weights = (self.w_delivery, self.w_availability, self.w_data_quality)
        if self.rate_ovpp_per_kwh < 0:
            raise ValueError(f"rate_ovpp_per_kwh: {self.rate_ovpp_per_kwh} must be >= 0")
        if any(w < 0 for w in weights) or abs(sum(weights) - 1) > 1e-9:
            raise ValueError(f"weights: {weights} must be >= 0 and sum to 1")


@dataclass(frozen=True)
class DeviceEpoch:
    """What a device did in an epoch.

    Attributes
    ----------
    device_id : str
        The registry's id (0x + 64 hex).
    owner_address : str or None
        Where its rewards go; ``None`` = no reward can be paid yet.
    delivered_kwh : float
        Delivered response (against its baseline) over the epoch's events [kWh].
    availability : float
        Share of the epoch it was online [0-1].
    data_quality : float
        Share of the expected telemetry received and valid [0-1].
    """

    device_id: str
    owner_address: str | None
    delivered_kwh: float
    availability: float
    data_quality: float


def availability(online_intervals: int, intervals: int) -> float:
    """Share of the epoch's intervals in which the device reported being online."""
    return min(1.0, online_intervals / intervals) if intervals > 0 else 0.0


def data_quality(valid_readings: int, epoch_s: float, telemetry_interval_s: float) -> float:
    """Share of the readings a device should have sent (one per telemetry interval)
    that arrived and were valid."""
    expected = epoch_s / telemetry_interval_s if telemetry_interval_s > 0 else 0
    return min(1.0, valid_readings / expected) if expected > 0 else 0.0


def _exact(value: float) -> Decimal:
    # Decimal of the shortest repr: 0.7 + 0.2 + 0.1 is exactly 1 here, not 0.9999...
    return Decimal(repr(float(value)))


def _contribution(record: DeviceEpoch, policy: RewardPolicy) -> Decimal:
    for name in ("availability", "data_quality"):
        value = getattr(record, name)
        if not 0 <= value <= 1:
            raise ValueError(f"{record.device_id}: {name} {value} must be between 0 and 1")
    factor = (
        _exact(policy.w_delivery)
        + _exact(policy.w_availability) * _exact(record.availability)
        + _exact(policy.w_data_quality) * _exact(record.data_quality)
    )
    return max(Decimal(0), _exact(record.delivered_kwh)) * factor


def contribution_kwh(record: DeviceEpoch, policy: RewardPolicy) -> float:
    return float(_contribution(record, policy))


@dataclass(frozen=True)
class EpochRewards:
    rewards: list[Reward]
    total: int
    skipped: dict[str, str]  # device id -> why it gets nothing


def epoch_rewards(epoch: int, records: Iterable[DeviceEpoch], policy: RewardPolicy) -> EpochRewards:
    """The rewards of ``epoch``: one per device with something to pay and an owner
    address, ordered by device id and numbered from 0."""
    unit = Decimal(10) ** policy.decimals
    rate = _exact(policy.rate_ovpp_per_kwh)
    rewards: list[Reward] = []
    skipped: dict[str, str] = {}
    seen: set[str] = set()
    for record in sorted(records, key=lambda r: r.device_id.lower()):
        device = record.device_id.lower()
        if device in seen:
            raise ValueError(f"{record.device_id}: listed twice in epoch {epoch}")
        seen.add(device)
        amount = int((rate * _contribution(record, policy) * unit).to_integral_value(ROUND_DOWN))
        if amount <= 0:
            skipped[device] = "nothing delivered"
            continue
        if not record.owner_address or not is_address(record.owner_address):
            skipped[device] = "no owner address to pay"
            continue
        rewards.append(
            Reward(
                epoch,
                len(rewards),
                bytes.fromhex(device.removeprefix("0x")),
                to_checksum_address(record.owner_address),
                amount,
            )
        )
    return EpochRewards(rewards, sum(r.amount for r in rewards), skipped)
