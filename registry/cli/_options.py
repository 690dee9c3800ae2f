"""Option aliases, choice Enums and argument helpers shared by every command group.

Choices are Enums, so a bad value fails while the command line is parsed, before any work.
Family names and their weight keys come from the installed families.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from registry.families import family_names

if TYPE_CHECKING:
    from registry.export.core import WeightSource


def _families_help() -> str:
    """One line per installed family: name, title, weight keys (a family that fails to import shows its name only)."""
    from registry.families import get_family

    parts = []
    for name in family_names():
        try:
            fam = get_family(name)
        except Exception:  # a broken third-party family must not break every command's help
            parts.append(name)
            continue
        keys = ", ".join(w.key for w in fam.weights) or "no weights"
        parts.append(f"{name} ({fam.meta.title}; weights: {keys})")
    return "; ".join(parts) or "none installed"


FamilyName = StrEnum("FamilyName", {n: n for n in family_names()})  # type: ignore[misc]


class QuantMode(StrEnum):
    STATIC = "static"
    DYNAMIC = "dynamic"
    FP16 = "fp16"


class GatedPrecision(StrEnum):
    INT8 = "int8"
    FP16 = "fp16"


class ScorePrecision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class Profile(StrEnum):
    FP32 = "fp32"
    INT8 = "int8"
    VMAFX = "vmafx"  # the VMAFx fork's runtime list, applied to every graph of an entry


class Matrix(StrEnum):
    AUTO = "auto"
    BT601 = "bt601"
    BT709 = "bt709"
    BT2020 = "bt2020"


class ScoreFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    JSONL = "jsonl"


class Engine(StrEnum):
    LOCAL = "local"
    RAY = "ray"


class Provider(StrEnum):
    CPU = "cpu"
    CUDA = "cuda"
    TENSORRT = "tensorrt"


FAMILIES_HELP = _families_help()

# One alias per option that more than one command takes: the same flag, type, help and
# default everywhere (commands differ in what they do with it, never in how it is spelt).
RegistryOpt = Annotated[
    Path | None,
    typer.Option("--registry", help="registry.json or a folder holding it or model/tiny/registry.json (default: "
                 "$TINYREG_REGISTRY, else found from the current folder)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output: one JSON object with 'command' and 'ok'")]
AllOpt = Annotated[bool, typer.Option("--all", help="every entry (instead of naming one)")]
KeyOpt = Annotated[
    list[Path] | None,
    typer.Option("--key", metavar="KEY.pem",
                 help="ECDSA P-256 key (PEM) for key-mode signatures: the private key to sign with, or the public key "
                      "to trust or verify with (trust takes several)"),
]
IdentityOpt = Annotated[str | None, typer.Option("--identity", help="exact certificate identity (SAN) of keyless signatures")]
IssuerOpt = Annotated[str | None, typer.Option("--issuer", help="exact OIDC issuer of keyless signatures")]
TrustedRootOpt = Annotated[
    Path | None,
    typer.Option("--trusted-root", metavar="FILE", help="Sigstore trusted_root.json (default: the public-good instance's)"),
]
StagingOpt = Annotated[bool, typer.Option("--staging", help="use the Sigstore staging instance (its trusted root, to sign: its services)")]
TrustOpt = Annotated[
    Path | None,
    typer.Option("--trust", envvar="TINYREG_TRUST", metavar="FILE",
                 help="the consumer's trust policy (tinyreg trust --out); env TINYREG_TRUST (set but empty is an error)"),
]
EntryIdArg = Annotated[str, typer.Argument(help="entry id", show_default=False)]
OptionalEntryIdArg = Annotated[str | None, typer.Argument(help="entry id (or --all)", show_default=False)]
FamilyArg = Annotated[FamilyName, typer.Argument(help=f"model family: {FAMILIES_HELP}", show_default=False)]  # type: ignore[valid-type]
NewIdOpt = Annotated[str | None, typer.Option("--id", help="entry id (default: the family's)")]
OpsetOpt = Annotated[int, typer.Option(help="ONNX opset (17..21); never silently another")]
WeightOpt = Annotated[
    list[str] | None,
    typer.Option("--weight", metavar="KEY=PATH|URL[#SHA256]",
                 help="a weight file by key, repeatable (default: the family's pinned upstream file; a file that is not "
                      f"the upstream one needs #SHA256). Keys: {FAMILIES_HELP}"),
]
RecordOpt = Annotated[bool, typer.Option("--record", help="record the measurement in the entry (measurements never write otherwise)")]
CacheOpt = Annotated[Path | None, typer.Option(help="download cache (default ~/.cache/tinyreg)")]
AllowlistOpt = Annotated[Path | None, typer.Option(help="allowlist JSON (default: the built-in one)")]


def find(registry: Path | None) -> Path:
    from registry.store.document import find_registry

    return find_registry(registry)


def one_key(keys: list[Path] | None) -> Path | None:
    """The one --key of a command that signs or verifies with a single key."""
    from registry.errors import UsageError

    if keys and len(keys) > 1:
        raise UsageError("give one --key here")
    return keys[0] if keys else None


def need_id(entry_id: str | None) -> str:
    from registry.errors import UsageError

    if not entry_id:
        raise UsageError("name an entry id or pass --all")
    return entry_id


def weight_sources(specs: list[str] | None) -> list[WeightSource]:
    from registry.export.core import WeightSource

    return [WeightSource.parse(s) for s in specs or []]
