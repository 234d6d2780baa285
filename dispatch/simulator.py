"""A simulated fleet of real OpenADR 2.0b VENs (openleadr clients) driving device models.

Each :class:`SimulatedVen` is a real :class:`openleadr.OpenADRClient` that registers with
the VTN, polls it, answers events and reports real power (TELEMETRY_USAGE) as a device
would. Behind it a device model follows the setpoints of the events it opted into:

- :class:`BatteryModel`: a home battery, idle by default, SoC kept within its limits;
- :class:`EVModel`: charges at full power until its energy is in, unless told otherwise;
- :class:`LoadModel`: household load following a real daily shape (UCI household power,
  see ``registry/data/SOURCES.md``), curtailable down to a share of it.

Misbehaviour is configurable (:class:`Misbehaviour`): opting out, never coming online,
delivering only part of the requested change, following setpoints late. Every model
keeps its ground truth (baseline and actual power per tick), against which measured
delivery is checked.

Sign convention: power is drawn from the grid when positive [kW].
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
from openleadr import OpenADRClient, objects, utils

from dispatch.certs import Credentials
from dispatch.measure import ON_OFF_TYPES
from dispatch.signing import Signer, use_signer, ven_options

#: openleadr's client module sets its logger to INFO when imported; every poll would log.
logging.getLogger("openleadr").setLevel(logging.WARNING)


def run_late_polls(client: OpenADRClient) -> None:
    """Make a VEN poll late rather than skip a poll: openleadr's scheduler drops a run
    more than a second late, which happens when many simulated VENs share one busy
    process (a VEN on its own device is not late), and the VEN then waits a whole poll
    interval more for its events."""
    client.scheduler.configure(job_defaults={"misfire_grace_time": None, "coalesce": True})


class _Client(OpenADRClient):
    """openleadr's VEN, asking each report only for its own data points: with more than
    one report, openleadr 0.5 lists every report's data points in each report request,
    and logs an error per foreign one at every sampling. It polls late rather than
    never (:func:`run_late_polls`), and stops after the poll in flight, if any: openleadr
    closes the connection under it, and the cancelled poll logs a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        run_late_polls(self)
        self._polls: set[asyncio.Task[Any]] = set()

    async def _poll(self) -> None:
        task = asyncio.current_task()
        if task is None:
            await super()._poll()
            return
        self._polls.add(task)
        try:
            await super()._poll()
        finally:
            self._polls.discard(task)

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.pause()
        if self._polls:
            await asyncio.wait(set(self._polls), timeout=10)
        await super().stop()

    async def update_report(self, report_request_id: str) -> None:
        request = utils.find_by(self.report_requests, "report_request_id", report_request_id)
        if request:
            spec = request["report_specifier_id"]
            request["r_ids"] = [r for r in request["r_ids"] if (spec, r) in self.report_callbacks]
        await super().update_report(report_request_id)


@dataclass(frozen=True)
class Misbehaviour:
    """How a VEN departs from the plan (shares are probabilities, 0-1).

    Parameters
    ----------
    opt_out : float
        Chance of answering an event with ``optOut``.
    offline : float
        Chance that the VEN never comes online.
    partial : float
        Share of the requested change from baseline actually delivered.
    delay_s : float
        Seconds late in following each setpoint.
    """

    opt_out: float = 0.0
    offline: float = 0.0
    partial: float = 1.0
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("opt_out", "offline", "partial"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be between 0 and 1, not {value!r}")
        if self.delay_s < 0:
            raise ValueError(f"delay_s: must be >= 0 seconds, not {self.delay_s!r}")


class DeviceModel(Protocol):
    """What a simulated device does per tick: its baseline, and its power given a setpoint."""

    def baseline_kw(self, at: datetime) -> float: ...

    def step(self, at: datetime, hours: float, setpoint_kw: float | None) -> float: ...

    @property
    def soc_frac(self) -> float | None: ...


@dataclass
class BatteryModel:
    """A home battery: idle unless told, SoC within ``[reserve_frac, 1]``."""

    capacity_kwh: float
    p_max_kw: float
    soc: float = 0.5
    efficiency: float = 0.95
    reserve_frac: float = 0.1

    def baseline_kw(self, at: datetime) -> float:
        return 0.0

    def step(self, at: datetime, hours: float, setpoint_kw: float | None) -> float:
        wanted = 0.0 if setpoint_kw is None else float(setpoint_kw)
        power = min(max(wanted, -self.p_max_kw), self.p_max_kw)
        if power > 0:  # charging: room left
            room = (1.0 - self.soc) * self.capacity_kwh / self.efficiency
            power = min(power, room / hours)
            self.soc += power * hours * self.efficiency / self.capacity_kwh
        elif power < 0:  # discharging: energy above the reserve
            stored = (self.soc - self.reserve_frac) * self.capacity_kwh * self.efficiency
            power = max(power, -max(0.0, stored) / hours)
            self.soc += power * hours / self.efficiency / self.capacity_kwh
        return power

    @property
    def soc_frac(self) -> float | None:
        return self.soc


@dataclass
class EVModel:
    """An EV plugged in: full power until ``energy_kwh`` is in; a setpoint (0 to the
    charger's rating) takes over while an event runs."""

    p_max_kw: float
    energy_kwh: float
    charged_kwh: float = 0.0

    def baseline_kw(self, at: datetime) -> float:
        return self.p_max_kw if self.charged_kwh < self.energy_kwh - 1e-9 else 0.0

    def step(self, at: datetime, hours: float, setpoint_kw: float | None) -> float:
        wanted = self.baseline_kw(at) if setpoint_kw is None else float(setpoint_kw)
        power = min(max(wanted, 0.0), self.p_max_kw)
        power = min(power, max(0.0, self.energy_kwh - self.charged_kwh) / hours)
        self.charged_kwh += power * hours
        return power

    @property
    def soc_frac(self) -> float | None:
        return min(1.0, self.charged_kwh / self.energy_kwh) if self.energy_kwh > 0 else 1.0


@dataclass
class LoadModel:
    """Household load following ``shape_kw`` (24 hourly values, UTC hours), curtailable
    down to ``1 - curtailable_frac`` of it: a setpoint is the load it should not exceed."""

    shape_kw: Sequence[float]
    curtailable_frac: float = 0.3

    def baseline_kw(self, at: datetime) -> float:
        hour = at.hour + at.minute / 60 + at.second / 3600
        low = int(hour) % 24
        weight = hour - int(hour)
        shape = self.shape_kw
        return float((1 - weight) * shape[low] + weight * shape[(low + 1) % 24])

    def step(self, at: datetime, hours: float, setpoint_kw: float | None) -> float:
        baseline = self.baseline_kw(at)
        if setpoint_kw is None:
            return baseline
        floor = baseline * (1.0 - self.curtailable_frac)
        return min(baseline, max(float(setpoint_kw), floor))

    @property
    def soc_frac(self) -> float | None:
        return None


@dataclass
class Tick:
    """Ground truth of one tick: when, what the device would have drawn, what it drew."""

    at: datetime
    baseline_kw: float
    power_kw: float


@dataclass
class Scheduled:
    """The intervals of one event the VEN opted into: (start, end, setpoint [kW])."""

    event_id: str
    modification: int
    intervals: list[tuple[datetime, datetime, float]]


class SimulatedVen:
    """A real openleadr VEN in front of a device model.

    Parameters
    ----------
    ven_name : str
        The VEN id its enrolment issued (the VTN refuses any other).
    behaviour : Misbehaviour
        How it departs from the plan; ``rng`` draws its choices.
    report_interval_s : float
        Sampling interval offered for its real-power report.
    tick_s : float
        How often the device model advances.
    credentials : Credentials, optional
        Signed mode: the VEN's certificate and key (TLS and signatures) and the CA the
        VTN's certificate must come from; ``vtn_fingerprint`` is then the fingerprint
        every answer of the VTN must be signed with. Without them, development mode.
    """

    def __init__(
        self,
        ven_name: str,
        vtn_url: str,
        model: DeviceModel,
        *,
        behaviour: Misbehaviour | None = None,
        rng: random.Random | None = None,
        report_interval_s: float = 10.0,
        tick_s: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        credentials: Credentials | None = None,
        vtn_fingerprint: str | None = None,
    ) -> None:
        if credentials is not None and not vtn_fingerprint:
            raise ValueError("vtn_fingerprint: needed in signed mode (credentials given)")
        self.ven_name = ven_name
        self.vtn_url = vtn_url
        self.model = model
        self.behaviour = behaviour or Misbehaviour()
        self.rng = rng or random.Random(ven_name)
        self.report_interval_s = report_interval_s
        self.tick_s = tick_s
        self.clock = clock
        self.offline = self.rng.random() < self.behaviour.offline
        self.events: dict[str, Scheduled] = {}
        self.answers: dict[str, str] = {}
        self.truth: list[Tick] = []
        self.power_kw = 0.0
        self.client: OpenADRClient | None = None
        self._metered_to: datetime | None = None
        self._tick_times: list[datetime] = []  # of ``truth``, for bisecting
        self._ticker: asyncio.Task[None] | None = None
        self.credentials = credentials
        self.vtn_fingerprint = vtn_fingerprint
        self._signer: Signer | None = None  # the key is parsed once, at the first start

    @property
    def online(self) -> bool:
        return self.client is not None and self.client.registration_id is not None

    async def start(self, wait_s: float = 0.0, retry_s: float = 2.0) -> None:
        """Register, offer the real-power and status reports, and start polling and
        ticking; retry every ``retry_s`` for ``wait_s`` seconds while the VTN does not
        answer (an offline VEN does nothing)."""
        if self.offline:
            return
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            client = self._client()
            await client.run()
            if client.registration_id is not None:
                break
            await client.stop()
            if asyncio.get_running_loop().time() + retry_s > deadline:
                return
            await asyncio.sleep(retry_s)
        self.client = client
        self._tick(self.clock(), 0.0)
        self._ticker = asyncio.get_running_loop().create_task(self._run_ticks())

    def _client(self) -> OpenADRClient:
        client: OpenADRClient
        if self.credentials is not None and self.vtn_fingerprint is not None:
            if self._signer is None:
                self._signer = Signer(self.credentials.cert_path, self.credentials.key_path)
            client = _Client(
                ven_name=self.ven_name,
                vtn_url=self.vtn_url,
                **ven_options(self.credentials, self.vtn_fingerprint),
            )
            use_signer(client, self._signer)
        else:
            client = _Client(ven_name=self.ven_name, vtn_url=self.vtn_url, disable_signature=True)
        client.add_handler("on_event", self._on_event)
        client.add_handler("on_update_event", self._on_event)
        # Sampled every report interval or any longer period the VTN asks for (the
        # meter's readings stay per report interval).
        every = objects.SamplingRate(
            min_period=timedelta(seconds=self.report_interval_s),
            max_period=timedelta(hours=1),
            on_change=False,
        )
        client.add_report(
            self._read,
            resource_id=self.ven_name,
            measurement="RealPower",
            unit="W",
            scale="k",
            sampling_rate=every,
            report_duration=timedelta(hours=24),
        )
        status: list[tuple[Callable[[], Any], str]] = [(self._online, "online")]
        if self.model.soc_frac is not None:
            status.append((self._soc, "soc"))
        for callback, point in status:
            client.add_report(
                callback,
                resource_id=f"{self.ven_name}/{point}",
                report_name="TELEMETRY_STATUS",
                sampling_rate=every,
                report_duration=timedelta(hours=24),
            )
        return client

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self.client is not None:
            await self.client.stop()
            self.client = None

    async def _on_event(self, event: dict[str, Any]) -> str:
        descriptor = event["event_descriptor"]
        event_id = str(descriptor["event_id"])
        if descriptor.get("event_status") == "cancelled":
            self.events.pop(event_id, None)
            return self.answers.get(event_id, "optIn")
        # A modification keeps the VEN's first answer, so an event is not re-rolled.
        answer = self.answers.get(event_id)
        if answer is None:
            answer = "optOut" if self.rng.random() < self.behaviour.opt_out else "optIn"
            self.answers[event_id] = answer
        if answer == "optIn":
            intervals = []
            for signal in event.get("event_signals", []):
                simple = signal.get("signal_name") == "SIMPLE"
                for interval in signal.get("intervals", []):
                    start = interval["dtstart"]
                    value = float(interval["signal_payload"])
                    if simple:
                        # A SIMPLE level: 0 is normal operation, 1-3 shed (off).
                        if value < 1:
                            continue
                        value = 0.0
                    intervals.append((start, start + interval["duration"], value))
            self.events[event_id] = Scheduled(
                event_id, int(descriptor.get("modification_number", 0)), sorted(intervals)
            )
        return answer

    def setpoint_kw(self, at: datetime) -> float | None:
        """The setpoint in force at ``at`` (after the VEN's delay), if any."""
        seen = at - timedelta(seconds=self.behaviour.delay_s)
        for scheduled in self.events.values():
            for start, end, value in scheduled.intervals:
                if start <= seen < end:
                    return value
        return None

    def _tick(self, at: datetime, hours: float) -> None:
        baseline = self.model.baseline_kw(at)
        setpoint = self.setpoint_kw(at)
        if setpoint is not None and self.behaviour.partial < 1.0:
            setpoint = baseline + self.behaviour.partial * (setpoint - baseline)
        self.power_kw = self.model.step(at, hours, setpoint) if hours > 0 else baseline
        self.truth.append(Tick(at, baseline, self.power_kw))
        self._tick_times.append(at)

    async def _run_ticks(self) -> None:
        last = self.clock()
        while True:
            await asyncio.sleep(self.tick_s)
            now = self.clock()
            self._tick(now, (now - last).total_seconds() / 3600)
            last = now

    async def _read(self) -> list[tuple[datetime, float]]:
        """Metered real power [kW] (the report's scale is kilo), as a meter gives it:
        the average over each whole sampling period (aligned to the clock) completed
        since the last report, stamped with the period's start."""
        if not self.truth:
            return []
        step = timedelta(seconds=self.report_interval_s)
        last = self.truth[-1].at
        if self._metered_to is None:
            seconds = self.truth[0].at.timestamp()
            period = self.report_interval_s
            self._metered_to = datetime.fromtimestamp(math.ceil(seconds / period) * period, UTC)
        bins = []
        while self._metered_to + step <= last:
            start = self._metered_to
            bins.append(
                (start, self.energy_kwh(start, start + step) / (step.total_seconds() / 3600))
            )
            self._metered_to = start + step
        return bins

    async def _soc(self) -> float:
        return float(self.model.soc_frac or 0.0)

    async def _online(self) -> float:
        return 1.0

    def _integral(self, start: datetime, end: datetime, value: Callable[[Tick], float]) -> float:
        # A tick's power holds from the tick before it until the tick itself.
        # Only the ticks around [start, end): a long-running VEN has many.
        first = max(0, bisect.bisect_right(self._tick_times, start) - 1)
        last = bisect.bisect_left(self._tick_times, end) + 1
        ticks = self.truth[first : last + 1]
        total = 0.0
        for before, after in itertools.pairwise(ticks):
            lo, hi = max(before.at, start), min(after.at, end)
            if hi > lo:
                total += value(after) * (hi - lo).total_seconds() / 3600
        return total

    def energy_kwh(self, start: datetime, end: datetime) -> float:
        """Ground truth: energy drawn between ``start`` and ``end`` [kWh]."""
        return self._integral(start, end, lambda tick: tick.power_kw)

    def delivered_kwh(self, start: datetime, end: datetime) -> float:
        """Ground truth: energy not drawn against the baseline between ``start`` and
        ``end`` (reduction positive) [kWh], from the ticks."""
        return self._integral(start, end, lambda tick: tick.baseline_kw - tick.power_kw)


def household_shape(day_of_year: int = 200, seed: int = 0) -> list[float]:
    """24 hourly values [kW] of a real household day (UCI household power), picked by
    ``seed`` among the days of the file nearest ``day_of_year``."""
    from registry.demo import load_household_power

    frame = load_household_power()
    frame["day"] = frame["timestamp_local"].dt.normalize()
    days = frame.groupby("day")["load_kw"].agg(list)
    days = days[days.map(len) == 24]
    doy = np.array([d.day_of_year for d in days.index])
    near = np.flatnonzero(np.abs(doy - day_of_year) <= 15)
    pick = near[seed % len(near)] if len(near) else seed % len(days)
    return [float(v) for v in days.iloc[int(pick)]]


#: Registry device types with a storage model; EVs and chargers have an EV model, the
#: rest follow a household shape scaled to their rating.
BATTERY_TYPES = frozenset({"battery", "c_and_i_storage"})
EV_TYPES = frozenset({"ev", "ev_charger"})


def model_for(
    device_type: str,
    p_max_kw: float,
    e_max_kwh: float | None,
    rng: random.Random,
    shapes: Sequence[Sequence[float]],
) -> DeviceModel:
    """A device model for a registry device: its kind, rating and energy."""
    if device_type in BATTERY_TYPES:
        capacity = e_max_kwh if e_max_kwh and e_max_kwh > 0 else 2 * p_max_kw
        return BatteryModel(capacity, p_max_kw, soc=rng.uniform(0.4, 0.9))
    if device_type in EV_TYPES:
        return EVModel(p_max_kw, energy_kwh=p_max_kw * rng.uniform(1.0, 4.0))
    shape = np.asarray(rng.choice(shapes), dtype=float)
    scaled = shape / max(float(shape.max()), 1e-9) * p_max_kw
    # On/off loads (SIMPLE levels) switch off whole; others shed part of their load.
    share = 1.0 if device_type in ON_OFF_TYPES else rng.uniform(0.2, 0.4)
    return LoadModel([float(v) for v in scaled], curtailable_frac=share)


@dataclass
class FleetSpec:
    """What a simulated fleet holds: shares of batteries, EVs and household loads."""

    devices: int
    battery_share: float = 0.4
    ev_share: float = 0.3
    behaviour: Misbehaviour = field(default_factory=Misbehaviour)
    seed: int = 0


def build_fleet(
    spec: FleetSpec,
    ven_names: Sequence[str],
    vtn_url: str,
    *,
    report_interval_s: float = 10.0,
    tick_s: float = 1.0,
) -> list[SimulatedVen]:
    """One :class:`SimulatedVen` per VEN name, device kinds and sizes drawn from ``seed``."""
    if len(ven_names) != spec.devices:
        raise ValueError(f"ven_names: {len(ven_names)} given for {spec.devices} devices")
    rng = random.Random(spec.seed)
    shapes = [household_shape(seed=spec.seed + k) for k in range(8)]
    vens = []
    for name in ven_names:
        draw = rng.random()
        model: DeviceModel
        if draw < spec.battery_share:
            power = rng.choice([3.3, 5.0, 7.6])
            model = BatteryModel(power * 2, power, soc=rng.uniform(0.4, 0.9))
        elif draw < spec.battery_share + spec.ev_share:
            power = rng.choice([3.7, 7.4, 11.0])
            model = EVModel(power, energy_kwh=power * rng.uniform(1.0, 4.0))
        else:
            model = LoadModel(rng.choice(shapes), curtailable_frac=rng.uniform(0.2, 0.4))
        vens.append(
            SimulatedVen(
                name,
                vtn_url,
                model,
                behaviour=spec.behaviour,
                rng=random.Random(f"{spec.seed}-{name}"),
                report_interval_s=report_interval_s,
                tick_s=tick_s,
            )
        )
    return vens


async def start_fleet(
    vens: Sequence[SimulatedVen], concurrency: int = 50, wait_s: float = 0.0
) -> None:
    """Start VENs, ``concurrency`` registrations at a time, each retrying for ``wait_s``
    seconds while the VTN does not answer."""
    gate = asyncio.Semaphore(concurrency)

    async def one(ven: SimulatedVen) -> None:
        async with gate:
            await ven.start(wait_s=wait_s)

    await asyncio.gather(*(one(v) for v in vens))


async def stop_fleet(vens: Sequence[SimulatedVen]) -> None:
    await asyncio.gather(*(v.stop() for v in vens))
