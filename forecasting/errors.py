"""The one error type of the forecasting package."""

from __future__ import annotations


class ForecastError(ValueError):
    """Input a forecast cannot use: the message names the field and the limit.

    Parameters
    ----------
    field : str
        The column, option or setting at fault (``target_column``, ``freq``, ...).
    message : str
        What is wrong and what was expected.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
