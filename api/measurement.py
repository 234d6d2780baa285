"""Measuring stored events: an event's delivered response from the device's telemetry,
into the device's delivery record once, and kept in the event's log.

The baseline measured against is measurement's own (:mod:`dispatch.measure`: 10-in-10
or meter-before), from the same readings that gave the plan its baseline of the load;
how the two relate, and so how what the plan expects of a device compares with what
measurement asks of it, is set out in :mod:`api.load_baselines`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from dispatch.baselines import BaselineError
from dispatch.measure import STORAGE_TYPES, Measured, interval_length, measure, metered_kw
from registry import events as store
from registry.devices import record_delivery
from registry.lookups import get_device
from registry.tables import DispatchEvent
from registry.telemetry import read_telemetry


class NotMeasurable(Exception):
    """The event cannot be measured (yet): ``conflict`` for its state, else its data."""

    def __init__(self, message: str, conflict: bool) -> None:
        super().__init__(message)
        self.message = message
        self.conflict = conflict


def event_end(event: DispatchEvent) -> datetime:
    last = event.intervals[-1]
    return datetime.fromisoformat(last["start"]) + interval_length(last)


def measure_intervals(
    session: Session,
    device_id: str,
    intervals: list[dict[str, Any]],
    signal: str = "LOAD_DISPATCH",
) -> Measured:
    """Measure ``intervals`` (``{"start", "minutes", "value"}``) of one device from its
    telemetry, without keeping anything.

    Raises
    ------
    BaselineError
        Too few readings in the intervals or before them.
    """
    device = get_device(session, device_id)
    first = datetime.fromisoformat(intervals[0]["start"])
    last = intervals[-1]
    end = datetime.fromisoformat(last["start"]) + interval_length(last)
    lookback = timedelta(hours=2) if device.device_type in STORAGE_TYPES else timedelta(days=46)
    frame = read_telemetry(session, device.device_id, first - lookback, end, limit=1_000_000)
    return measure(intervals, metered_kw(frame), device.device_type, signal)


def measure_event(session: Session, event: DispatchEvent, now: datetime) -> dict[str, Any]:
    """Measure a finished event (setpoints or SIMPLE levels) the device opted into, add
    it to the device's delivery
    record once and keep it in the event's log; measuring again returns the same.

    Raises
    ------
    NotMeasurable
        The event is not a finished, opted-in ``LOAD_DISPATCH`` event, or its
        telemetry does not allow a baseline.
    """
    done = store.measured(session, event.event_id)
    if done is not None:
        return done
    if event.signal_name not in ("LOAD_DISPATCH", "SIMPLE"):
        raise NotMeasurable(f"signal_name: {event.signal_name} events are not measured", True)
    if event.status != "opted_in":
        raise NotMeasurable(f"status: the event is {event.status}, not opted_in", True)
    end = event_end(event)
    if end > now:
        raise NotMeasurable(f"end: the event runs until {end.isoformat()}", True)
    try:
        result = measure_intervals(session, event.device_id, event.intervals, event.signal_name)
    except BaselineError as exc:
        raise NotMeasurable(str(exc), False) from exc
    record_delivery(session, event.device_id, result.requested_kwh, result.delivered_kwh)
    detail = result.as_dict()
    store.record_measured(session, event.event_id, detail, now)
    return detail
