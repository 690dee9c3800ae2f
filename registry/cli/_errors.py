"""The one error boundary: tinyreg errors become one line on stderr and their exit code."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from registry.cli._output import die
from registry.errors import EXIT_INTERNAL, EXIT_USAGE, Error

F = TypeVar("F", bound=Callable[..., Any])


def command(fn: F) -> F:
    """Wrap a command so every error ends as one line and a documented exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Error as exc:
            die(exc.diagnostics(), exc.exit_code)
        except KeyboardInterrupt:
            die("interrupted", 130)
        except (OSError, ValueError) as exc:
            die(" ".join(str(exc).split()) or type(exc).__name__, EXIT_USAGE)
        except typer.Exit:
            raise
        except Exception as exc:
            if os.environ.get("TINYREG_DEBUG"):
                raise
            die(f"internal error ({type(exc).__name__}: {' '.join(str(exc).split())}); "
                "rerun with TINYREG_DEBUG=1 for a traceback and report it", EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]
