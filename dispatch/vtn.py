"""The OpenADR 2.0b VTN (openleadr 0.5.36), tied to the registry through a lookup.

A VEN may register only under the VEN id its enrolment issued: the VTN asks
``ven_lookup(ven_name)`` (the service passes a registry query) and refuses any other.
Plans go out as events: ``LOAD_DISPATCH`` setpoints [kW] per interval for batteries,
EVs and heat pumps, ``SIMPLE`` levels for on/off loads; every opt-in or opt-out that
comes back is kept in :attr:`Vtn.responses` and passed to ``on_response``. VENs that
offer a TELEMETRY_USAGE report of real power are asked for it every
``report_interval_s``; its readings [kW] go to ``on_readings`` with the VEN's latest
status. Status comes as a TELEMETRY_STATUS report whose data points are named by their
resource id's last part: ``.../soc`` (state of charge, 0-1) and ``.../online`` (1 or
0); openleadr 0.5 carries them as plain numbers (it has no resource-status payload).

Plain HTTP on loopback without message signatures is for development only; signed
messages with certificate fingerprints are the production mode (not wired yet).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from openleadr import OpenADRServer, utils

PATH = "/OpenADR2/Simple/2.0b"
#: OpenADR scale codes of watts, as a factor to kW.
SCALE_TO_KW = {"none": 1e-3, "k": 1.0, "M": 1e3}


#: TELEMETRY_STATUS data points: resource id suffix -> telemetry field.
STATUS_FIELDS = {"soc": "soc_frac", "online": "online"}

Readings = Callable[[str, list[tuple[datetime, float]], dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class OptResponse:
    """A VEN's answer to an event."""

    ven_id: str
    event_id: str
    opt_type: str  # "optIn" or "optOut"
    at: datetime


class Vtn:
    """One VTN on ``host:port``.

    Parameters
    ----------
    ven_lookup : callable
        ``ven_lookup(ven_name)`` returns the VEN id when that VEN may register (an open
        enrolment issued it), else ``None``.
    poll_interval_s : float
        How often VENs are asked to poll.
    on_response : callable, optional
        Awaited with each :class:`OptResponse`.
    """

    def __init__(
        self,
        ven_lookup: Callable[[str], str | None],
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        poll_interval_s: float = 10.0,
        vtn_id: str = "openvpp-vtn",
        on_response: Callable[[OptResponse], Awaitable[None]] | None = None,
        on_readings: Readings | None = None,
        report_interval_s: float = 60.0,
    ) -> None:
        self.ven_lookup = ven_lookup
        self.host, self.port = host, port
        self.on_response = on_response
        self.on_readings = on_readings
        self.report_interval = timedelta(seconds=report_interval_s)
        self.responses: list[OptResponse] = []
        self.refused: list[str] = []
        #: Latest status per VEN: ``soc_frac`` (0-1) and ``online`` (bool) when reported.
        self.status: dict[str, dict[str, Any]] = {}
        #: When each VEN last polled (UTC).
        self.seen: dict[str, datetime] = {}
        self.poll_interval = timedelta(seconds=poll_interval_s)
        self.server = OpenADRServer(
            vtn_id=vtn_id,
            http_host=host,
            http_port=port,
            requested_poll_freq=timedelta(seconds=poll_interval_s),
            show_fingerprint=False,
        )
        self.server.add_handler("on_create_party_registration", self._register)
        self.server.add_handler("on_register_report", self._register_report)
        # openleadr's VTN fails (HTTP 500) on a report without intervals, which its own
        # VENs send when they have nothing new: such reports are dropped first.
        reports = self.server.services["report_service"]
        update_report = reports.handlers["oadrUpdateReport"]

        async def drop_empty(payload: dict[str, Any]) -> Any:
            payload["reports"] = [r for r in payload.get("reports", []) if r.get("intervals")]
            return await update_report(payload)

        reports.handlers["oadrUpdateReport"] = drop_empty
        # Every poll tells that a VEN is connected.
        polls = self.server.services["poll_service"]
        poll = polls.handlers["oadrPoll"]

        async def heard(payload: dict[str, Any]) -> Any:
            self.seen[str(payload.get("ven_id"))] = datetime.now(UTC)
            return await poll(payload)

        polls.handlers["oadrPoll"] = heard
        # openleadr logs every message at INFO; keep our logs readable.
        logging.getLogger("openleadr").setLevel(logging.WARNING)

    def connected(self, polls: float = 3.0) -> set[str]:
        """VENs that polled within the last ``polls`` poll intervals."""
        since = datetime.now(UTC) - polls * self.poll_interval
        return {ven for ven, at in self.seen.items() if at >= since}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"

    async def start(self) -> None:
        await self.server.run()

    async def stop(self) -> None:
        await self.server.stop()

    async def _register(self, info: dict[str, Any]) -> tuple[str, str] | bool:
        name = str(info.get("ven_name") or "")
        ven_id = self.ven_lookup(name)
        if ven_id is None:
            self.refused.append(name)
            return False
        return ven_id, f"reg-{ven_id}"

    async def _register_report(
        self,
        ven_id: str,
        resource_id: str,
        measurement: str,
        unit: str | None,
        scale: str | None,
        min_sampling_interval: timedelta,
        max_sampling_interval: timedelta,
    ) -> tuple[Any, timedelta, timedelta] | None:
        """Ask for real power (TELEMETRY_USAGE) in kW and status (TELEMETRY_STATUS) at
        the report interval."""
        if self.on_readings is None:
            return None
        # The report interval, within what the VEN offers (a VEN drops a request
        # outside its range and sends empty reports).
        interval = min(max(min_sampling_interval, self.report_interval), max_sampling_interval)
        if measurement == "Status":
            field = STATUS_FIELDS.get(str(resource_id or "").rsplit("/", 1)[-1])
            if field is None:
                return None

            async def status(data: list[tuple[datetime, float]]) -> None:
                if data:
                    value = float(data[-1][1])
                    self.status.setdefault(ven_id, {})[field] = (
                        value >= 0.5 if field == "online" else value
                    )

            return status, interval, interval
        if measurement != "RealPower" or unit != "W":
            return None
        factor = SCALE_TO_KW.get(scale or "none")
        if factor is None:
            return None
        on_readings = self.on_readings

        async def received(data: list[tuple[datetime, float]]) -> None:
            await on_readings(
                ven_id,
                [(stamp, float(value) * factor) for stamp, value in data],
                dict(self.status.get(ven_id, {})),
            )

        return received, interval, interval

    async def _responded(self, ven_id: str, event_id: str, opt_type: str) -> None:
        response = OptResponse(ven_id, event_id, opt_type, datetime.now(UTC))
        self.responses.append(response)
        if self.on_response is not None:
            await self.on_response(response)

    def send_setpoints(
        self,
        ven_id: str,
        start: datetime,
        step: timedelta,
        values_kw: Sequence[float],
        signal_name: str = "LOAD_DISPATCH",
    ) -> str:
        """An event of setpoints [kW], one per interval of ``step`` from ``start``;
        returns the event id."""
        if start.tzinfo is None:
            raise ValueError("start: needs a time zone")
        intervals = [
            {"dtstart": start + i * step, "duration": step, "signal_payload": float(v)}
            for i, v in enumerate(values_kw)
        ]
        return str(
            self.server.add_event(
                ven_id=ven_id,
                signal_name=signal_name,
                signal_type="setpoint" if signal_name == "LOAD_DISPATCH" else "level",
                intervals=intervals,
                callback=self._responded,
            )
        )

    def send_levels(
        self, ven_id: str, start: datetime, step: timedelta, levels: Sequence[int]
    ) -> str:
        """A SIMPLE event: levels 0-3 per interval (on/off loads)."""
        if any(level not in (0, 1, 2, 3) for level in levels):
            raise ValueError("levels: SIMPLE levels are 0, 1, 2 or 3")
        return self.send_setpoints(ven_id, start, step, [float(v) for v in levels], "SIMPLE")

    def cancel(self, ven_id: str, event_id: str) -> None:
        self.server.cancel_event(ven_id, event_id)

    def modify(
        self,
        ven_id: str,
        event_id: str,
        start: datetime,
        step: timedelta,
        values_kw: Sequence[float],
    ) -> None:
        """Give an event new intervals: its modification number goes up, and the VEN
        gets it at its next poll and answers again."""
        if start.tzinfo is None:
            raise ValueError("start: needs a time zone")
        event = utils.find_by(
            self.server.events.get(ven_id, []), "event_descriptor.event_id", event_id
        )
        if not event:
            raise KeyError(f"event_id: no event {event_id} for VEN {ven_id}")
        intervals = [
            {"dtstart": start + i * step, "duration": step, "signal_payload": float(v)}
            for i, v in enumerate(values_kw)
        ]
        for signal in utils.getmember(event, "event_signals"):
            utils.setmember(signal, "intervals", intervals)
        period = utils.get_active_period_from_intervals(intervals, False)
        old = utils.getmember(event, "active_period")
        for name in ("ramp_up_period", "notification_period", "recovery_period"):
            setattr(period, name, getattr(old, name, None))
        utils.setmember(event, "active_period", period)
        utils.increment_event_modification_number(event)
        # openleadr forgets an event's answer callback after the first answer: the VEN
        # answers a modified event again, and that answer counts too.
        self.server.event_callbacks[event_id] = (event, self._responded)
        self.server.events_updated[ven_id] = True
