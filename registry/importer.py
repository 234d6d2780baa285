"""Bulk import of devices from CSV.

The CSV has a header row naming :class:`~registry.schemas.DeviceIn` fields. Empty
cells mean "not given"; ``protocols`` lists protocols separated by ``;``.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from registry.schemas import DeviceIn

#: Columns a devices CSV may have, in the order ``vpp`` writes them.
COLUMNS = [name for name in DeviceIn.model_fields]
REQUIRED = [name for name, field in DeviceIn.model_fields.items() if field.is_required()]


class CsvFormatError(ValueError):
    """The file is not a devices CSV (missing columns, unknown columns, not text)."""


def read_devices_csv(path: Path, extra_columns: Collection[str] = ()) -> Iterator[dict[str, Any]]:
    """Yield one mapping per data row, ready for ``DeviceIn.model_validate``.

    ``extra_columns`` names further columns a caller accepts (a planning export may
    carry EV sessions beside the device fields); they are passed through as text.

    Raises
    ------
    CsvFormatError
        When the header lacks a required column or names an unknown one.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in header]
        unknown = [c for c in header if c not in COLUMNS and c not in extra_columns]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing required columns: {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
            raise CsvFormatError(f"{path}: " + "; ".join(parts))
        reader.fieldnames = header
        for raw in reader:
            row: dict[str, Any] = {
                key: value.strip()
                for key, value in raw.items()
                if key is not None and value is not None and value.strip() != ""
            }
            if "protocols" in row:
                row["protocols"] = [p.strip() for p in row["protocols"].split(";") if p.strip()]
            yield row


def count_rows(path: Path) -> int:
    """Data rows in a CSV file (for a progress bar's total)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)
