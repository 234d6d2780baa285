"""``vpp forecast`` on a CSV of real household load."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.forecasting.conftest import UCI

runner = CliRunner()
KEYS = {"mae", "rmse", "nmae", "pinball", "coverage_p10_p90", "naive_mae", "skill", "rows_skipped"}


@pytest.fixture(scope="module")
def load_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Half a year of UCI household load, 30-minute steps, with three broken rows."""
    frame = pd.read_csv(UCI, parse_dates=["timestamp_local"])
    frame = frame[
        (frame["timestamp_local"] >= "2009-05-01") & (frame["timestamp_local"] < "2009-11-01")
    ]
    hourly = frame.set_index("timestamp_local")["Global_active_power"]
    half_hourly = hourly.resample("30min").ffill()
    out = pd.DataFrame(
        {
            "time": pd.DatetimeIndex(half_hourly.index).strftime("%Y-%m-%d %H:%M"),
            "load_kw": half_hourly.round(4).astype(str),
        }
    )
    out.iloc[100, 1] = ""
    out.iloc[200, 1] = "error"
    out.iloc[300, 0] = "yesterday"
    path = tmp_path_factory.mktemp("forecast") / "load.csv"
    out.to_csv(path, index=False)
    return path


def test_backtest_json(load_csv: Path) -> None:
    result = runner.invoke(
        app,
        [
            "forecast",
            "backtest",
            "--data",
            str(load_csv),
            "--timestamp-column",
            "time",
            "--target-column",
            "load_kw",
            "--freq",
            "30min",
            "--horizon",
            "1D",
            "--folds",
            "2",
            "--country",
            "FR",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) >= KEYS
    assert summary["rows_skipped"] == 3
    assert summary["model"] in ("gbm", "linear")
    assert set(summary["models"]) == {"gbm", "linear"}
    assert summary["mae"] == min(m["mae"] for m in summary["models"].values())
    assert summary["skill"] > 0  # better than both naive forecasts on real load
    assert summary["naive_mae"] > summary["mae"]


def test_train_then_predict(load_csv: Path, tmp_path: Path) -> None:
    common = ["--data", str(load_csv), "--timestamp-column", "time"]
    trained = runner.invoke(
        app,
        [
            "forecast",
            "train",
            *common,
            "--target-column",
            "load_kw",
            "--name",
            "home-1",
            "--folds",
            "0",
            "--model",
            "linear",
            "--models-dir",
            str(tmp_path),
            "--json",
        ],
    )
    assert trained.exit_code == 0, trained.output
    meta = json.loads(trained.stdout.strip().splitlines()[-1])
    assert meta["model"] == "linear" and meta["freq"] == "0 days 00:30:00"
    assert (tmp_path / "home-1.joblib").is_file()
    out = tmp_path / "forecast.csv"
    predicted = runner.invoke(
        app,
        [
            "forecast",
            "predict",
            *common,
            "--name",
            "home-1",
            "--models-dir",
            str(tmp_path),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout.strip().splitlines()[-1])["forecast"]
    assert len(rows) == 48  # one day of 30-minute intervals
    assert rows[0]["timestamp"] == "2009-11-01 00:00:00"
    assert all(r["p10"] <= r["p50"] <= r["p90"] for r in rows)
    assert len(pd.read_csv(out)) == 48


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--target-column", "kw"], "target_column: no column 'kw'"),
        (["--target-column", "load_kw", "--freq", "10min"], "freq: 0 days 00:10:00 is finer"),
        (["--target-column", "load_kw", "--model", "arima"], "model: 'arima'"),
        (
            ["--target-column", "load_kw", "--horizon", "45min"],
            "horizon: 45min must be a whole number",
        ),
    ],
)
def test_bad_input_is_one_clear_line(load_csv: Path, arguments: list[str], message: str) -> None:
    result = runner.invoke(
        app,
        ["forecast", "backtest", "--data", str(load_csv), "--timestamp-column", "time", *arguments],
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_predict_with_an_unknown_model(load_csv: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "forecast",
            "predict",
            "--data",
            str(load_csv),
            "--timestamp-column",
            "time",
            "--name",
            "nobody",
            "--models-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "no model 'nobody'" in result.output
