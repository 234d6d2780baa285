"""Cost terms of a plan, recomputed from its arrays alone.

The same named terms as the models' objective (energy, demand charge, degradation,
unmet EV energy, comfort, shortfall, limit violation), so a plan assembled from
parts (the decomposed path) is priced exactly like a plan solved whole, and a test
can check that a solver's own cost split matches its schedule.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from optimizer.prepare import Prepared


def request_change(data: Prepared, power_kw: np.ndarray, r: int) -> np.ndarray:
    """Expected change of request ``r``'s scope against its baseline, per interval [kW]
    (negative = reduction), each device counted at its delivery factor."""
    scope = data.scopes[r]
    intervals = list(scope.intervals)
    members, factor, baseline = _scope_devices(data, r)
    if not len(members):
        return np.zeros(len(intervals))
    change = factor[:, None] * (power_kw[members][:, intervals] - baseline)
    return np.asarray(change.sum(axis=0))


def _scope_devices(data: Prepared, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions, delivery factors and baselines (over the window) of request ``r``'s
    devices (worked out once per problem)."""
    key = ("scope devices", r)
    if key not in data.cache:
        data.cache[key] = _find_scope_devices(data, r)
    found: tuple[np.ndarray, np.ndarray, np.ndarray] = data.cache[key]
    return found


def _find_scope_devices(data: Prepared, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    devices = data.problem.fleet.devices()
    scope = data.scopes[r]
    intervals = list(scope.intervals)
    site_of = np.fromiter((data.site_of[d.device_id] for d in devices), np.int64, len(devices))
    members = np.flatnonzero(np.isin(site_of, scope.sites))
    factor = np.array([devices[i].delivery_factor for i in members], dtype=float)
    baseline = np.array(
        [data.baseline_kw[devices[i].device_id][intervals] for i in members], dtype=float
    ).reshape(len(members), len(intervals))
    return members, factor, baseline


def request_shortfall(data: Prepared, power_kw: np.ndarray, r: int) -> np.ndarray:
    """What request ``r`` misses per interval, given the plan's power [kW]."""
    scope = data.scopes[r]
    request = scope.request
    intervals = list(scope.intervals)
    change = request_change(data, power_kw, r)
    if request.kw is not None:
        return np.clip(request.kw + change, 0, None)
    _, _, devices_baseline = _scope_devices(data, r)
    baseline = data.site_base_kw[list(scope.sites)][:, intervals].sum(axis=0)
    baseline = baseline + devices_baseline.sum(axis=0)
    return np.clip(baseline + change - scope.cap_kw, 0, None)


def feeder_violation(data: Prepared, site_net_kw: np.ndarray) -> np.ndarray:
    """How far each feeder's net power passes its import or export limit [kW]."""
    out = np.zeros((len(data.feeder_ids), site_net_kw.shape[1]))
    if "feeder sums" not in data.cache:
        position = {feeder: f for f, feeder in enumerate(data.feeder_ids)}
        feeder_of = np.fromiter(
            (position[f] for f in data.site_feeder), np.int64, len(data.site_feeder)
        )
        data.cache["feeder sums"] = sp.csr_array(
            (np.ones(len(feeder_of)), (feeder_of, np.arange(len(feeder_of)))),
            shape=(len(data.feeder_ids), len(feeder_of)),
        )
    nets = data.cache["feeder sums"] @ site_net_kw
    for f, feeder in enumerate(data.feeder_ids):
        net = nets[f]
        if data.feeder_import_max_kw[feeder] is not None:
            out[f] = np.maximum(out[f], net - float(data.feeder_import_max_kw[feeder] or 0.0))
        if data.feeder_export_max_kw[feeder] is not None:
            out[f] = np.maximum(out[f], -net - float(data.feeder_export_max_kw[feeder] or 0.0))
    return np.clip(out, 0, None)


def evaluate_costs(
    data: Prepared,
    *,
    battery_charge_kw: np.ndarray,
    battery_discharge_kw: np.ndarray,
    ev_discharge_kw: np.ndarray,
    ev_unmet_kwh: np.ndarray,
    curtail_kw: np.ndarray,
    heat_pump_temp_c: np.ndarray,
    site_net_kw: np.ndarray,
    site_violation_kw: np.ndarray,
    feeder_violation_kw: np.ndarray,
    shortfall_kw: list[np.ndarray],
) -> dict[str, float]:
    """Every cost term [currency] of a plan given as arrays (see :class:`Solution`)."""
    fleet = data.problem.fleet
    dt = data.step_h
    wear = np.array([b.degradation_cost_per_kwh for b in fleet.batteries])
    unmet_price = np.array([v.unmet_energy_cost_per_kwh for v in fleet.vehicles])
    v2g_wear = np.array([v.v2g_degradation_cost_per_kwh for v in fleet.vehicles])
    shed_price = np.array([c.comfort_cost_per_kwh for c in fleet.curtailable_loads])
    pumps = fleet.heat_pumps
    band_low = np.array([h.temp_min_c for h in pumps])[:, None]
    band_high = np.array([h.temp_max_c for h in pumps])[:, None]
    outside = np.clip(band_low - heat_pump_temp_c, 0, None) + np.clip(
        heat_pump_temp_c - band_high, 0, None
    )
    costs = {
        "degradation": float(
            dt * (wear[:, None] * (battery_charge_kw + battery_discharge_kw)).sum()
            + dt * (v2g_wear[:, None] * ev_discharge_kw).sum()
        ),
        "unmet_ev_energy": float(unmet_price @ ev_unmet_kwh) if len(unmet_price) else 0.0,
        "comfort_curtailment": float(dt * (shed_price[:, None] * curtail_kw).sum()),
        "comfort_heat_pump": float(
            dt * (np.array([h.comfort_cost_per_ch for h in pumps])[:, None] * outside).sum()
        ),
        "limit_violation": float(
            dt
            * data.problem.limit_violation_cost_per_kwh
            * (site_violation_kw.sum() + feeder_violation_kw.sum())
        ),
        "shortfall": float(
            sum(
                dt * data.scopes[r].request.shortfall_price_per_kwh * s.sum()
                for r, s in enumerate(shortfall_kw)
            )
        ),
    }
    imports = np.clip(site_net_kw, 0, None)
    if data.demand_charge_per_kw:
        costs["demand_charge"] = float(data.demand_charge_per_kw * imports.max(axis=1).sum())
    if data.import_price is not None and data.export_price is not None:
        exports = np.clip(-site_net_kw, 0, None)
        costs["energy"] = float(
            dt * (imports.sum(axis=0) @ data.import_price - exports.sum(axis=0) @ data.export_price)
        )
    return costs
