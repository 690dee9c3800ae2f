"""One error hierarchy; ``diagnostics()`` is the line a user reads.

Exit codes (documented in the README):

* 0 -- success, nothing to report
* 1 -- the command ran and found problems (verify findings, gate over budget,
  parity failure, an integrity mismatch on load)
* 2 -- usage error or unreadable input (missing file, malformed JSON, schema
  violation in a file we were asked to act on, path escaping the registry)
* 70 -- internal error (a bug); set TINYREG_DEBUG=1 for the traceback
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70  # a bug in tinyreg (EX_SOFTWARE); TINYREG_DEBUG=1 shows the traceback


class Error(Exception):
    """Base class of every error tinyreg raises on purpose."""

    exit_code: int = EXIT_USAGE

    def diagnostics(self) -> str:
        """One line, suitable for stderr, that says what went wrong."""
        text = str(self) or self.__class__.__name__
        return " ".join(text.split())


class UsageError(Error):
    """The command line or its arguments do not make sense."""


class InputError(Error):
    """A file we were asked to read is missing, unreadable or malformed."""


class RegistryNotFound(InputError):
    """No registry.json could be found from the current folder."""


class PathEscape(InputError):
    """A path recorded in the registry leaves the registry folder."""


class SchemaError(InputError):
    """A registry or sidecar document violates its JSON Schema."""


class IntegrityError(Error):
    """Bytes on disk do not match their pin: refuse to use them."""

    exit_code = EXIT_FINDINGS


class ConflictError(Error):
    """What a writer computed from changed while it ran; nothing was written (run it again)."""


class SmokeOverwriteError(UsageError):
    """Refusing to replace a real artifact with a smoke placeholder."""


class MissingDependency(UsageError):
    """An optional extra is needed for this command."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'tinyreg[{extra}]'")


class CheckFailed(Error):
    """A check ran to completion and the verdict is 'fail'."""

    exit_code = EXIT_FINDINGS


class SignatureError(IntegrityError):
    """A signature bundle does not verify against the registry's signing policy."""
