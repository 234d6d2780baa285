"""Registry errors as HTTP answers, in the shape FastAPI gives validation errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from registry.enrollment import CapabilityMismatch
from registry.errors import Conflict, InvalidInput, NotFound, Problem


def _item(problem: Problem, kind: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "loc": ["body", *problem.field.split(".")],
        "msg": problem.message,
        "type": kind,
    }
    if problem.value is not None:
        item["input"] = problem.value
    if problem.limit is not None:
        item["ctx"] = {"limit": problem.limit}
    return item


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return JSONResponse(
        {"detail": [_item(p, "value_error") for p in exc.problems]},
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Conflict)
    problem = Problem(exc.field, exc.message, exc.value)
    return JSONResponse({"detail": [_item(problem, "conflict")]}, status.HTTP_409_CONFLICT)


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)


async def _mismatch(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CapabilityMismatch)
    return JSONResponse(
        {
            "detail": f"device does not meet the requirements of program {exc.program_id}",
            "device_id": exc.device_id,
            "program_id": exc.program_id,
            "failed_checks": [c.as_dict() for c in exc.failed],
        },
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
    # The database refused a value the schemas let through (PostgreSQL stores no NUL
    # character in text, for one): the input is at fault, and nothing was written.
    return JSONResponse(
        {"detail": "a value cannot be stored (text with a NUL character, or a number too large)"},
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(InvalidInput, _invalid)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(CapabilityMismatch, _mismatch)
