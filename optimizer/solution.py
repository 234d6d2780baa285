"""A solved LP read back into arrays, whichever formulation produced it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Solution:
    """Values of a solved plan, device by device, in the fleet's order.

    Arrays are ``(devices of the kind, intervals)``; ``power_kw`` covers every device
    in :meth:`~optimizer.devices.Fleet.devices` order. ``request_dual`` holds, per
    request, the dual of each interval's row (derivative of the cost with respect to
    its bound), or ``None`` when there are none (a MILP).
    """

    status: str
    feasible: bool
    objective: float
    mip_gap: float | None
    power_kw: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    battery_soc_kwh: np.ndarray
    ev_charge_kw: np.ndarray
    ev_discharge_kw: np.ndarray
    ev_unmet_kwh: np.ndarray
    curtail_kw: np.ndarray
    heat_pump_kw: np.ndarray
    heat_pump_temp_c: np.ndarray
    site_net_kw: np.ndarray
    site_violation_kw: np.ndarray
    feeder_violation_kw: np.ndarray
    request_shortfall_kw: list[np.ndarray]
    request_dual: list[np.ndarray | None]
    costs: dict[str, float]
    timings_s: dict[str, float] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    #: Simplex basis (column and row statuses) to warm-start an LP of the same shape.
    basis: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def empty(cls, status: str, timings: dict[str, float], size: dict[str, int]) -> Solution:
        """No usable solution (infeasible, or a limit hit before any was found)."""
        nothing = np.zeros((0, 0))
        return cls(
            status=status,
            feasible=False,
            objective=float("nan"),
            mip_gap=None,
            power_kw=nothing,
            battery_charge_kw=nothing,
            battery_discharge_kw=nothing,
            battery_soc_kwh=nothing,
            ev_charge_kw=nothing,
            ev_discharge_kw=nothing,
            ev_unmet_kwh=np.zeros(0),
            curtail_kw=nothing,
            heat_pump_kw=nothing,
            heat_pump_temp_c=nothing,
            site_net_kw=nothing,
            site_violation_kw=nothing,
            feeder_violation_kw=nothing,
            request_shortfall_kw=[],
            request_dual=[],
            costs={},
            timings_s=timings,
            size=size,
        )
