"""The events store: answers change an event's status, except once it is cancelled."""

from __future__ import annotations

from sqlalchemy.orm import Session

from registry import events as store


def _sent(session: Session, event_id: str) -> None:
    store.record_sent(
        session,
        event_id,
        ven_id="ven-1",
        device_id="0x" + "ab" * 32,
        signal_name="LOAD_DISPATCH",
        intervals=[{"start": "2026-11-21T17:00:00+00:00", "minutes": 15, "value": -3.0}],
    )


def test_an_answer_after_cancellation_is_kept_but_does_not_revive_the_event(
    session: Session,
) -> None:
    _sent(session, "ev-1")
    answered = store.record_response(session, "ev-1", "optOut")
    assert answered is not None and answered.status == "opted_out"
    store.record_cancel(session, "ev-1")
    late = store.record_response(session, "ev-1", "optIn")
    assert late is not None and late.status == "cancelled"
    session.commit()
    log = [(e.action, e.detail) for e in store.event_log(session, "ev-1")]
    assert log[-1] == ("opt", {"opt_type": "optIn", "after": "cancelled"})
    assert [a for a, _ in log] == ["sent", "opt", "cancelled", "opt"]
    assert store.record_response(session, "ev-unknown", "optIn") is None
