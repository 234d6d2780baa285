from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from registry.devices import create_device, retire_device
from registry.enrollment import (
    CapabilityMismatch,
    capability_checks,
    enroll,
    history,
    links_at,
    unenroll,
)
from registry.errors import Conflict
from registry.programs import close_program, create_program
from registry.tables import Enrollment, EnrollmentLog
from tests.factories import device_in, program_in

VTN = "http://127.0.0.1:8080/OpenADR2/Simple/2.0b"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_enrol_returns_connection_parameters(session: Session) -> None:
    device = create_device(session, device_in())
    create_program(session, program_in())
    connection = enroll(session, device.device_id, "RES-DR", vtn_url=VTN, actor="tester", now=T0)
    session.commit()
    assert connection.program_id == "RES-DR"
    assert connection.vtn_url == VTN
    assert connection.ven_id == "ven-" + device.device_id[2:26]
    assert connection.auth["method"] == "ven_secret" and len(connection.auth["ven_secret"]) >= 32
    stored = session.scalar(select(Enrollment))
    assert stored is not None and connection.auth["ven_secret"] not in stored.credential_hash
    [entry] = history(session, device_id=device.device_id)
    assert (entry.action, entry.actor, entry.at) == ("enrolled", "tester", T0)


def test_failed_checks_name_field_value_and_limit_and_form_no_link(session: Session) -> None:
    device = create_device(
        session,
        device_in(
            p_max_kw=1.0,
            p_min_kw=-1.0,
            e_max_kwh=2.0,
            protocols=["matter"],
            response_time_s=120.0,
            telemetry_interval_s=None,
            region="South",
        ),
    )
    create_program(session, program_in())
    with pytest.raises(CapabilityMismatch) as info:
        enroll(session, device.device_id, "RES-DR", vtn_url=VTN)
    failed = {c.name: c for c in info.value.failed}
    assert set(failed) == {
        "territory",
        "min_power",
        "min_energy",
        "protocol",
        "max_response_time",
        "telemetry_interval",
    }
    assert (failed["min_power"].device_value, failed["min_power"].program_limit) == (2.0, 3.0)
    assert (failed["min_energy"].device_value, failed["min_energy"].program_limit) == (2.0, 5.0)
    assert failed["max_response_time"].device_value == 120.0
    assert failed["telemetry_interval"].device_value is None  # not stated: cannot be relied on
    assert session.scalar(select(func.count()).select_from(Enrollment)) == 0
    assert session.scalar(select(func.count()).select_from(EnrollmentLog)) == 0


def test_only_requirements_the_program_sets_are_checked(session: Session) -> None:
    device = create_device(session, device_in(device_type="heat_pump", p_min_kw=0, e_max_kwh=None))
    program = create_program(
        session,
        program_in(min_energy_kwh=None, min_power_kw=None, protocols=[], max_response_time_s=None),
    )
    names = [c.name for c in capability_checks(device, program)]
    assert names == [
        "program_open",
        "device_active",
        "territory",
        "device_type",
        "telemetry_interval",
    ]
    assert all(c.passed for c in capability_checks(device, program))


def test_closed_program_and_retired_device_fail(session: Session) -> None:
    device = create_device(session, device_in())
    create_program(session, program_in())
    close_program(session, "RES-DR")
    retire_device(session, device.device_id)
    with pytest.raises(CapabilityMismatch) as info:
        enroll(session, device.device_id, "RES-DR", vtn_url=VTN)
    assert {c.name for c in info.value.failed} == {"program_open", "device_active"}


def test_double_enrolment_conflicts(session: Session) -> None:
    device = create_device(session, device_in())
    create_program(session, program_in())
    enroll(session, device.device_id, "RES-DR", vtn_url=VTN)
    with pytest.raises(Conflict):
        enroll(session, device.device_id, "RES-DR", vtn_url=VTN)


def test_history_answers_who_was_linked_when(session: Session) -> None:
    a = create_device(session, device_in("A"))
    b = create_device(session, device_in("B"))
    create_program(session, program_in())
    enroll(session, a.device_id, "RES-DR", vtn_url=VTN, now=T0)
    enroll(session, b.device_id, "RES-DR", vtn_url=VTN, now=T0 + timedelta(hours=1))
    unenroll(session, a.device_id, "RES-DR", reason="moved", now=T0 + timedelta(hours=2))
    enroll(session, a.device_id, "RES-DR", vtn_url=VTN, now=T0 + timedelta(hours=3))
    retire_device(session, b.device_id, now=T0 + timedelta(hours=4))
    session.commit()

    def linked(at: datetime) -> set[str]:
        return {e.device_id for e in links_at(session, at, program_id="RES-DR")}

    assert linked(T0 - timedelta(seconds=1)) == set()
    assert linked(T0 + timedelta(minutes=30)) == {a.device_id}
    assert linked(T0 + timedelta(minutes=90)) == {a.device_id, b.device_id}
    assert linked(T0 + timedelta(minutes=150)) == {b.device_id}
    assert linked(T0 + timedelta(minutes=210)) == {a.device_id, b.device_id}
    assert linked(T0 + timedelta(hours=5)) == {a.device_id}
    actions = [(e.device_id, e.action, e.reason) for e in history(session, program_id="RES-DR")]
    assert actions[-1] == (b.device_id, "unenrolled", "device retired")
    assert len(actions) == 5


def test_log_is_append_only_in_the_database(session: Session) -> None:
    device = create_device(session, device_in())
    create_program(session, program_in())
    enroll(session, device.device_id, "RES-DR", vtn_url=VTN)
    session.commit()
    for statement in ("UPDATE enrollment_log SET action = 'x'", "DELETE FROM enrollment_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        session.rollback()
    assert session.scalar(select(func.count()).select_from(EnrollmentLog)) == 1
