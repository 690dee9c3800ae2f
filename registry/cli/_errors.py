"""The one error boundary: tinyreg errors become one line on stderr (plus the JSON envelope under --json)
and their exit code.

Library errors never name command-line flags; the ``hint`` they carry (a parameter
name) becomes the flag to pass here. ``TINYREG_DEBUG=1`` prints the full cause chain
(traceback with every ``raise ... from``) of any error before its one line.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from registry.cli import _output as out
from registry.errors import EXIT_INTERNAL, EXIT_USAGE, Error

F = TypeVar("F", bound=Callable[..., Any])

# hint (a library parameter) -> what to do on the command line
HINTS = {
    "registry": "pass --registry PATH, set TINYREG_REGISTRY, or run 'tinyreg init'",
    "force": "use --force",
    "key": "sign with --key PRIVATE.pem",
    "keyless": "sign without --key (keyless, with an OIDC identity)",
    "trust": "give --key PUB.pem, or --identity and --issuer",
    "trusted_root": "pass --trusted-root FILE",
    "trusted_root_or_staging": "give --trusted-root or --staging, not both",
    "expires_in": "--expires-in DAYS, 1 to 3660",
    "max_memory": "or --max-memory SIZE on the command line",
    "max_pixels": "raise the cap with --max-pixels N, 0 for none",
    "scale": "--scale ref or --scale WxH resizes",
    "identity_token": "pass --identity-token or run in CI with 'id-token: write'",
    "calibration": "pass --calibration DIR",
    "trust_or_unverified": "pass --trust FILE, or --unverified to take the entry unchecked",
}


def hint_text(exc: Error) -> str | None:
    hint = getattr(exc, "hint", None)
    if not isinstance(hint, str) or not hint:
        return None
    if hint == "weight":
        key = str(getattr(exc, "key", None) or "KEY")
        return f"pass --weight {key}=PATH, or a URL with #SHA256 for a file that is not the upstream one"
    return HINTS.get(hint, "--" + hint.replace("_", "-"))


def with_hint(exc: Error) -> str:
    msg = exc.diagnostics()
    hint = hint_text(exc)
    return f"{msg} ({hint})" if hint else msg


def debug() -> bool:
    return os.environ.get("TINYREG_DEBUG", "") not in ("", "0")


def _chain(exc: BaseException) -> None:
    if debug():
        traceback.print_exception(exc, file=sys.stderr, chain=True)


def command_name(fn: Callable[..., Any]) -> str:
    return fn.__name__.removesuffix("_cmd").replace("_", "-")


def command(fn: F) -> F:
    """Wrap a command so every error ends as one line and a documented exit code."""
    name = command_name(fn)

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out.begin(name, bool(kwargs.get("as_json")))
        try:
            with warnings.catch_warnings():
                shown = warnings.showwarning

                def show(message: Any, category: type[Warning], *rest: Any, **kw: Any) -> None:
                    from registry.store.commit import RecoveryWarning  # what a writer finished or discarded: one line

                    if issubclass(category, RecoveryWarning):
                        out.warn(str(message))
                    else:
                        shown(message, category, *rest, **kw)

                warnings.showwarning = show
                return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except Error as exc:
            _chain(exc)
            out.die(exc.diagnostics(), exc.exit_code, hint_text(exc))
        except KeyboardInterrupt:
            out.die("interrupted", 130)
        except ImportError as exc:  # an optional extra that is not installed: one line naming it, exit 2
            from registry._internal.deps import missing_dependency

            _chain(exc)
            dep = missing_dependency(exc)
            if dep is None:
                out.die(f"internal error (ImportError: {' '.join(str(exc).split())})", EXIT_INTERNAL)
            else:
                out.die(dep.diagnostics(), dep.exit_code)
        except (OSError, ValueError) as exc:
            _chain(exc)
            text = str(exc)
            if isinstance(exc, OSError) and exc.filename is not None:  # worded like the safe reader ("is a socket ...")
                from registry._internal.safeio import unreadable

                text = str(unreadable(str(exc.filename), exc))
            out.die(" ".join(text.split()) or type(exc).__name__, EXIT_USAGE)
        except Exception as exc:
            _chain(exc)
            out.die(f"internal error ({type(exc).__name__}: {' '.join(str(exc).split())})"
                    + ("" if debug() else "; rerun with TINYREG_DEBUG=1 for a traceback and report it"), EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]
