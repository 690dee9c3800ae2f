"""What every family exporter shares: upstream records, the checks on an exported graph, the entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.errors import CheckFailed, UsageError
from registry.export.fetch import is_url
from registry.families.base import Family, Upstream
from registry.store.document import Entry


def check_opset(opset: int, family: str) -> None:
    from registry.onnx.build import SUPPORTED_OPSETS

    if opset not in SUPPORTED_OPSETS:
        raise UsageError(f"opset {opset} is not supported by the {family} exporter "
                         f"(supported: {', '.join(map(str, SUPPORTED_OPSETS))})")


def upstream_record(u: Upstream, source: str, sha256: str) -> dict[str, Any]:
    """Provenance of one weights file; a file pinned by the user is marked as not the upstream one."""
    official = sha256.lower() == u.sha256
    rec: dict[str, Any] = {"name": u.name if official else f"{u.name} (user-pinned, not the upstream file)",
                           "sha256": sha256.lower(), "license": u.license, "official": official}
    if is_url(source):
        rec["url"] = source
    elif official:
        rec["url"] = u.url
    return rec


def upstream_metadata(family: str, upstream: list[dict[str, Any]]) -> dict[str, str]:
    meta = {"tinyreg.family": family, "tinyreg.smoke": "false"}
    for i, u in enumerate(upstream):
        meta[f"tinyreg.upstream.{i}.sha256"] = u["sha256"]
    return meta


def write_export(
    registry_path: Path, fam: Family, model: Any, upstream: list[dict[str, Any]], *, opset: int, entry_id: str | None,
    exporter: str,
) -> Entry:
    """Check the exported graph (opset, declared op set, allowlist, ONNX checker) and write the real entry."""
    import onnx

    from registry.export.smoke import tool_versions
    from registry.onnx.allowlist import check_model, errors_only, load_allowlist
    from registry.onnx.inspect import inspect_model
    from registry.store.entries import family_fields, write_entry

    info = inspect_model(model)
    if info.opset != opset:  # never a silent other opset
        raise CheckFailed(f"exporter produced opset {info.opset}, asked for {opset}")
    if info.op_set() != set(fam.ops):
        raise CheckFailed(f"exported op set {sorted(info.op_set())} differs from the family's declared op set")
    bad = errors_only(check_model(info, load_allowlist(), "fp32"))
    if bad:
        raise CheckFailed(f"exported graph breaks the op allowlist: {bad[0]}")
    onnx.checker.check_model(model)
    official = all(u["official"] for u in upstream)
    fields: dict[str, Any] = {
        **family_fields(fam, entry_id or fam.default_id, info.io_json()),
        "smoke": False,
        "placeholder_for": None,
        "opset": opset,
        "description": f"{fam.title}: {fam.score_convention}."
        + ("" if official else " Built from user-pinned weights, not the upstream files."),
        "provenance": {"exporter": exporter, "tools": tool_versions("torch", "onnx", "numpy"), "upstream": upstream},
    }
    return write_entry(registry_path, fields, {fields["onnx"]: model.SerializeToString()})
