"""A real openleadr VTN and real VENs over loopback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openleadr import OpenADRClient

from dispatch.vtn import Vtn
from tests.conftest import free_port


async def _wait(condition: Any, seconds: float = 15.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def test_enrolled_ven_gets_setpoints_and_opts_in_unknown_is_refused() -> None:
    async def scenario() -> None:
        vtn = Vtn({"ven-abc": "ven-abc"}.get, port=free_port(), poll_interval_s=1)
        await vtn.start()
        received: list[dict[str, Any]] = []

        async def on_event(event: dict[str, Any]) -> str:
            received.append(event)
            return "optIn"

        ven = OpenADRClient(ven_name="ven-abc", vtn_url=vtn.url, disable_signature=True)
        ven.add_handler("on_event", on_event)
        stranger = OpenADRClient(ven_name="ven-zzz", vtn_url=vtn.url, disable_signature=True)
        try:
            await ven.run()
            await stranger.run()
            assert ven.registration_id == "reg-ven-abc" and ven.ven_id == "ven-abc"
            assert stranger.registration_id is None and vtn.refused == ["ven-zzz"]
            start = datetime.now(UTC) + timedelta(minutes=5)
            event_id = vtn.send_setpoints("ven-abc", start, timedelta(minutes=15), [2.5, -1.0])
            assert await _wait(lambda: vtn.responses)
            [response] = vtn.responses
            assert (response.ven_id, response.event_id, response.opt_type) == (
                "ven-abc",
                event_id,
                "optIn",
            )
            [signal] = received[0]["event_signals"]
            assert signal["signal_name"] == "LOAD_DISPATCH"
            assert [i["signal_payload"] for i in signal["intervals"]] == [2.5, -1.0]
        finally:
            await ven.stop()
            await stranger.stop()
            await vtn.stop()

    asyncio.run(scenario())


def test_a_ven_that_drops_and_comes_back_gets_the_current_event() -> None:
    async def scenario() -> None:
        vtn = Vtn({"ven-abc": "ven-abc"}.get, port=free_port(), poll_interval_s=1)
        await vtn.start()
        seen: list[list[str]] = [[], []]

        def client(k: int) -> OpenADRClient:
            ven = OpenADRClient(ven_name="ven-abc", vtn_url=vtn.url, disable_signature=True)

            async def on_event(event: dict[str, Any]) -> str:
                seen[k].append(event["event_descriptor"]["event_id"])
                return "optIn"

            ven.add_handler("on_event", on_event)
            return ven

        first = client(0)
        second = client(1)
        try:
            await first.run()
            start = datetime.now(UTC) + timedelta(minutes=5)
            event_id = vtn.send_setpoints("ven-abc", start, timedelta(minutes=15), [3.0])
            assert await _wait(lambda: seen[0] == [event_id])
            await first.stop()  # the connection drops; the event is still on
            await second.run()  # the same VEN comes back
            assert await _wait(lambda: seen[1] == [event_id])
        finally:
            await second.stop()
            await vtn.stop()

    asyncio.run(scenario())


def test_a_modified_event_reaches_the_ven_which_answers_again() -> None:
    async def scenario() -> None:
        vtn = Vtn({"ven-abc": "ven-abc"}.get, port=free_port(), poll_interval_s=1)
        await vtn.start()
        versions: list[tuple[int, list[float]]] = []

        async def on_event(event: dict[str, Any]) -> str:
            [signal] = event["event_signals"]
            versions.append(
                (
                    event["event_descriptor"]["modification_number"],
                    [i["signal_payload"] for i in signal["intervals"]],
                )
            )
            return "optIn"

        ven = OpenADRClient(ven_name="ven-abc", vtn_url=vtn.url, disable_signature=True)
        ven.add_handler("on_event", on_event)
        ven.add_handler("on_update_event", on_event)
        try:
            await ven.run()
            start = datetime.now(UTC) + timedelta(minutes=5)
            step = timedelta(minutes=15)
            event_id = vtn.send_setpoints("ven-abc", start, step, [2.0, 2.0])
            assert await _wait(lambda: len(vtn.responses) == 1)
            vtn.modify("ven-abc", event_id, start, step, [1.0, 3.0, 0.5])
            assert await _wait(lambda: len(vtn.responses) == 2)
            assert versions == [(0, [2.0, 2.0]), (1, [1.0, 3.0, 0.5])]
            assert [r.event_id for r in vtn.responses] == [event_id, event_id]
            with pytest.raises(KeyError, match="event_id"):
                vtn.modify("ven-abc", "no-such-event", start, step, [1.0])
        finally:
            await ven.stop()
            await vtn.stop()

    asyncio.run(scenario())
