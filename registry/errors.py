"""One error hierarchy; ``diagnostics()`` is the line a user reads.

Exit codes (documented in the README):

* 0 -- success, nothing to report
* 1 -- the command ran and found problems (verify findings, gate over budget,
  parity failure, an integrity mismatch on load)
* 2 -- usage error or unreadable input (missing file, malformed JSON, schema
  violation in a file we were asked to act on, path escaping the registry, an
  entry that changed while a writer worked from it)
* 70 -- internal error (a bug)

TINYREG_DEBUG=1 makes the CLI print the full cause chain of any error.
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70  # a bug in tinyreg (EX_SOFTWARE); TINYREG_DEBUG=1 shows the traceback


class Error(Exception):
    """Base class of every error tinyreg raises on purpose.

    Messages speak the library's language (no command-line flags). ``hint`` names what
    the caller could change (a parameter such as ``force`` or ``registry``); the CLI's
    error boundary turns it into the flag to pass.
    """

    exit_code: int = EXIT_USAGE

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        self.hint = hint

    def diagnostics(self) -> str:
        """One line, suitable for stderr, that says what went wrong (control characters made visible)."""
        text = str(self) or self.__class__.__name__
        return printable(" ".join(text.split()))


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every terminal control character (C0 but tab/newline, DEL, C1, bidi overrides) shown as an escape.

    Ids, notes and file names come from registries anyone can edit: ``ESC[2J`` or an
    OSC 8 link must reach a terminal as visible text, never as a command.
    """
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text)
    return out if keep_newlines else out.replace("\n", "\\n")


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


class MissingWeight(UsageError):
    """A weight file an entry was built from cannot be found again; ``key`` names it (hint ``weight``)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message, hint="weight")
        self.key = key


class MissingDependency(UsageError):
    """An optional extra is needed for this command."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'tinyreg[{extra}]'")
        self.hint = None


class CheckFailed(Error):
    """A check ran to completion and the verdict is 'fail'."""

    exit_code = EXIT_FINDINGS


class SignatureError(IntegrityError):
    """A signature bundle does not verify against the registry's signing policy."""
