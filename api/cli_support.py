"""What every ``vpp`` command shares: one way to report expected failures."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from registry.errors import RegistryError

console = Console(stderr=True, soft_wrap=True)  # an error stays one line
F = TypeVar("F", bound=Callable[..., Any])


def friendly(func: F) -> F:
    """Report expected failures as one clear line and exit 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except RegistryError as exc:
            console.print(f"[red]error:[/red] {exc}")
        except OperationalError as exc:
            console.print(f"[red]error:[/red] database unreachable: {exc.orig}")
        except SQLAlchemyError as exc:
            console.print(f"[red]error:[/red] database: {exc}")
        except (OSError, ValueError, RuntimeError) as exc:
            console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)

    return wrapper  # type: ignore[return-value]
