"""``vpp forecast``: backtest, train and predict load forecasts on any CSV."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli_support import friendly
from api.settings import Settings

forecast_app = typer.Typer(help="Load forecasts: backtest, train, predict.", no_args_is_help=True)
console = Console(stderr=True)

DataOption = Annotated[Path, typer.Option("--data", help="CSV (plain or .gz) with the series")]
TimestampOption = Annotated[str, typer.Option(help="Column with the interval start timestamps")]
TargetOption = Annotated[str, typer.Option(help="Column with the numeric target (e.g. kW)")]
WeatherOption = Annotated[
    list[str] | None,
    typer.Option(help="Weather columns known ahead (repeat or comma-separate)"),
]
FreqOption = Annotated[
    str | None, typer.Option(help="Resolution: 15min, 30min, 1h (default: the data's)")
]
TimezoneOption = Annotated[
    str | None, typer.Option(help="Time zone of the timestamps' wall clock (e.g. Europe/Paris)")
]
HorizonOption = Annotated[str, typer.Option(help="Length of each forecast, e.g. 1D or 6h")]
CutoffOffsetOption = Annotated[
    str, typer.Option(help="Cut-offs at midnight plus this offset (and every horizon after)")
]
CountryOption = Annotated[
    str | None, typer.Option(help="ISO country code for public holidays, e.g. FR or US")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Last line: one JSON object")]


def _weather(columns: list[str] | None) -> tuple[str, ...]:
    return tuple(c.strip() for value in columns or [] for c in value.split(",") if c.strip())


def _load(
    data: Path,
    timestamp_column: str,
    target_column: str,
    weather_columns: list[str] | None,
    freq: str | None,
    timezone: str | None,
) -> Any:
    from forecasting.series import read_csv

    return read_csv(
        data, timestamp_column, target_column, _weather(weather_columns), freq, timezone
    )


def _spec(series: Any, horizon: str, cutoff_offset: str, country: str | None, weather: Any) -> Any:
    import pandas as pd

    from forecasting.errors import ForecastError
    from forecasting.features import FeatureSpec
    from forecasting.series import parse_horizon

    try:
        offset = pd.Timedelta(cutoff_offset)
    except ValueError as exc:
        raise ForecastError("cutoff_offset", f"{cutoff_offset!r} is not a duration") from exc
    if not pd.Timedelta(0) <= offset < pd.Timedelta("1D"):
        raise ForecastError("cutoff_offset", f"{cutoff_offset} must be within one day")
    return FeatureSpec(
        freq=series.freq,
        horizon=parse_horizon(horizon, series.freq),
        cutoff_offset=offset,
        country=country,
        weather_columns=tuple(weather),
    )


def _models(model: str) -> list[str]:
    from forecasting.errors import ForecastError
    from forecasting.models import MODELS

    names = list(MODELS) if model == "auto" else [m.strip() for m in model.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        raise ForecastError("model", f"{model!r}: choose from auto, {', '.join(MODELS)}")
    return names


def _run_backtests(
    series: Any, spec: Any, names: list[str], folds: int, test_start: str | None, quiet: bool
) -> dict[str, Any]:
    from forecasting.backtest import backtest
    from forecasting.models import LoadForecaster

    results = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as bar:
        for name in names:
            task = bar.add_task(f"backtest {name}", total=folds)

            def make(name: str = name) -> LoadForecaster:
                return LoadForecaster(spec, model=name)

            def tick(done: int, total: int, task: Any = task) -> None:
                bar.update(task, completed=done, total=total)

            weather = series.weather if spec.weather_columns else None
            results[name] = backtest(
                series.target,
                make,
                weather=weather,
                folds=folds,
                test_start=test_start,
                progress=tick,
            )
    return results


def _summary(series: Any, results: dict[str, Any]) -> dict[str, Any]:
    best = min(results, key=lambda name: results[name].metrics["mae"])
    chosen = results[best].metrics
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in chosen.items()}
    return {
        "model": best,
        **clean,
        "rows_read": series.rows_read,
        "rows_skipped": series.rows_skipped,
        "intervals_missing": series.missing,
        "models": {name: result.metrics for name, result in results.items()},
    }


def _print_metrics(summary: dict[str, Any]) -> None:
    table = Table("model", "MAE", "RMSE", "nMAE", "pinball", "P10-P90 cover", "skill")
    for name, m in summary["models"].items():
        table.add_row(
            name + (" (chosen)" if name == summary["model"] else ""),
            f"{m['mae']:.4f}",
            f"{m['rmse']:.4f}",
            f"{m['nmae']:.3f}",
            f"{m['pinball']:.4f}",
            f"{m['coverage_p10_p90']:.3f}",
            f"{m['skill']:.3f}",
        )
    first = next(iter(summary["models"].values()))
    table.add_row("naive: same time yesterday", f"{first['naive_day_mae']:.4f}", *[""] * 5)
    table.add_row("naive: same time last week", f"{first['naive_week_mae']:.4f}", *[""] * 5)
    console.print(table)
    console.print(
        f"{int(summary['intervals'])} intervals scored over {int(summary['folds'])} folds in "
        f"{summary['seconds']:.1f} s; {summary['rows_skipped']} input rows skipped "
        f"(missing or not a number), {summary['intervals_missing']} intervals without a value"
    )


@forecast_app.command("backtest")
@friendly
def forecast_backtest(
    data: DataOption,
    timestamp_column: TimestampOption,
    target_column: TargetOption,
    weather_columns: WeatherOption = None,
    freq: FreqOption = None,
    horizon: HorizonOption = "1D",
    cutoff_offset: CutoffOffsetOption = "0h",
    folds: Annotated[int, typer.Option(min=1, max=52, help="Test windows, each retrained")] = 4,
    test_start: Annotated[
        str | None, typer.Option(help="First day tested (default: the last year or quarter)")
    ] = None,
    model: Annotated[str, typer.Option(help="auto (all, best chosen), gbm, linear")] = "auto",
    country: CountryOption = None,
    timezone: TimezoneOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the tested forecasts and actuals to this CSV")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Rolling-origin backtest beside the naive forecasts; prints MAE, RMSE, nMAE,
    pinball loss, P10-P90 coverage and skill."""

    series = _load(data, timestamp_column, target_column, weather_columns, freq, timezone)
    spec = _spec(series, horizon, cutoff_offset, country, _weather(weather_columns))
    results = _run_backtests(series, spec, _models(model), folds, test_start, as_json)
    summary = _summary(series, results)
    if out is not None:
        results[summary["model"]].predictions.to_csv(out, index_label="timestamp")
    if as_json:
        typer.echo(json.dumps(summary, default=float))
    else:
        _print_metrics(summary)
        if out is not None:
            console.print(f"forecasts written to {out}")


@forecast_app.command("train")
@friendly
def forecast_train(
    data: DataOption,
    timestamp_column: TimestampOption,
    target_column: TargetOption,
    name: Annotated[str, typer.Option(help="Name to save the model under")],
    weather_columns: WeatherOption = None,
    freq: FreqOption = None,
    horizon: HorizonOption = "1D",
    cutoff_offset: CutoffOffsetOption = "0h",
    folds: Annotated[
        int, typer.Option(min=0, max=52, help="Backtest folds first (0: none, keep --model)")
    ] = 2,
    model: Annotated[str, typer.Option(help="auto (the backtest's best), gbm or linear")] = "auto",
    country: CountryOption = None,
    timezone: TimezoneOption = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="Where models are saved (default VAR_DIR/models)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Train a model on the whole series (after a backtest that picks the model family
    and is stored with it) and save it by name."""

    from forecasting.models import LoadForecaster
    from forecasting.store import save_model

    series = _load(data, timestamp_column, target_column, weather_columns, freq, timezone)
    spec = _spec(series, horizon, cutoff_offset, country, _weather(weather_columns))
    names = _models(model)
    summary = None
    if folds > 0:
        summary = _summary(series, _run_backtests(series, spec, names, folds, None, as_json))
        chosen = summary["model"]
    else:
        chosen = names[0]
    trained = LoadForecaster(spec, model=chosen).fit(
        series.target, series.weather if spec.weather_columns else None
    )
    directory = models_dir or Settings().var_dir / "models"
    meta = save_model(
        trained,
        directory,
        name,
        target_column=target_column,
        timestamp_column=timestamp_column,
        metrics=None if summary is None else summary["models"][chosen],
        data=str(data),
    )
    if as_json:
        typer.echo(json.dumps(meta, default=str))
    else:
        if summary is not None:
            _print_metrics(summary)
        console.print(
            f"model {name!r} ({chosen}) trained on {meta['training_rows']} intervals "
            f"({meta['training_start']} to {meta['training_end']}), saved in {directory}"
        )


@forecast_app.command("predict")
@friendly
def forecast_predict(
    data: DataOption,
    timestamp_column: TimestampOption,
    name: Annotated[str, typer.Option(help="Name of a trained model")],
    target_column: Annotated[
        str | None, typer.Option(help="Target column (default: the one it was trained on)")
    ] = None,
    cutoff: Annotated[
        str | None, typer.Option(help="Issue time (default: right after the data's last value)")
    ] = None,
    timezone: TimezoneOption = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="Where models are saved (default VAR_DIR/models)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the forecast to this CSV")] = None,
    as_json: JsonOption = False,
) -> None:
    """Forecast the next horizon from the history in a CSV with a saved model."""

    import pandas as pd

    from forecasting.store import load_model

    directory = models_dir or Settings().var_dir / "models"
    model, meta = load_model(directory, name)
    column = target_column or meta["target_column"]
    series = _load(
        data,
        timestamp_column,
        column,
        list(model.spec.weather_columns),
        str(model.spec.freq),
        timezone,
    )
    issue = pd.Timestamp(cutoff) if cutoff else None
    forecast = model.predict(
        series.target, series.weather if model.spec.weather_columns else None, issue
    )
    if out is not None:
        forecast.to_csv(out, index_label="timestamp")
    if as_json:
        rows = [
            {"timestamp": str(stamp), **{str(k): float(v) for k, v in row.items()}}
            for stamp, row in forecast.iterrows()
        ]
        typer.echo(json.dumps({"model": name, "forecast": rows}))
        return
    table = Table("timestamp", *forecast.columns)
    for stamp, row in forecast.iterrows():
        table.add_row(str(stamp), *(f"{v:.4f}" for v in row))
    console.print(table)
    if out is not None:
        console.print(f"forecast written to {out}")
