"""The one error boundary: tinyreg errors become one line on stderr and their exit code.

Library errors never name command-line flags; the ``hint`` they carry (a parameter
name) becomes the flag to pass here. ``TINYREG_DEBUG=1`` prints the full cause chain
(traceback with every ``raise ... from``) of any error before its one line.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from registry.cli._output import die
from registry.errors import EXIT_INTERNAL, EXIT_USAGE, Error

F = TypeVar("F", bound=Callable[..., Any])

# hint (a library parameter) -> what to do on the command line
HINTS = {
    "registry": "pass --registry PATH or run 'tinyreg init'",
    "force": "use --force",
    "key": "sign with --key PRIVATE.pem",
    "keyless": "sign without --key (keyless, with an OIDC identity)",
    "trust": "give --key PUB.pem, or --identity and --issuer",
    "trusted_root": "pass --trusted-root FILE",
    "trusted_root_or_staging": "give --trusted-root or --staging, not both",
    "expires_in": "--expires-in DAYS, at least 1",
    "max_memory": "or --max-memory SIZE on the command line",
    "identity_token": "pass --identity-token or run in CI with 'id-token: write'",
    "calibration": "pass --calibration DIR",
    "vgg16": "pass it again with --vgg16 PATH",
    "alpha_beta": "pass it again with --alpha-beta PATH",
    "lin": "pass it again with --lin PATH",
}


def with_hint(exc: Error) -> str:
    hint = getattr(exc, "hint", None)
    msg = exc.diagnostics()
    if not hint:
        return msg
    return f"{msg} ({HINTS.get(hint, '--' + hint.replace('_', '-'))})"


def debug() -> bool:
    return os.environ.get("TINYREG_DEBUG", "") not in ("", "0")


def _chain(exc: BaseException) -> None:
    if debug():
        traceback.print_exception(exc, file=sys.stderr, chain=True)


def command(fn: F) -> F:
    """Wrap a command so every error ends as one line and a documented exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except Error as exc:
            _chain(exc)
            die(with_hint(exc), exc.exit_code)
        except KeyboardInterrupt:
            die("interrupted", 130)
        except (OSError, ValueError) as exc:
            _chain(exc)
            die(" ".join(str(exc).split()) or type(exc).__name__, EXIT_USAGE)
        except Exception as exc:
            _chain(exc)
            die(f"internal error ({type(exc).__name__}: {' '.join(str(exc).split())})"
                + ("" if debug() else "; rerun with TINYREG_DEBUG=1 for a traceback and report it"), EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]
