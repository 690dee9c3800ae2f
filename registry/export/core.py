"""What the core does for every family: weights fetched with their pins, every graph check, every entry write.

A family only builds graphs (:mod:`registry.plugin`). Here the core resolves which
weight files to use (given by the user, recorded in the entry, or the family's
upstream pins), fetches and checks them, asks the family for the graph, checks the
graph against the family's contract and the allowlist, and writes the entry.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import CheckFailed, MissingDependency, MissingWeight, UsageError
from registry.export.fetch import fetch_pinned, is_url
from registry.store.document import Entry
from registry.store.types import is_smoke

if TYPE_CHECKING:
    from registry.plugin import Family, WeightFile

_SHA = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class WeightSource:
    """A weight file the user names: ``KEY=PATH|URL[#sha256]``."""

    key: str
    source: str
    sha256: str | None = None

    @classmethod
    def parse(cls, text: str) -> WeightSource:
        key, sep, rest = text.partition("=")
        if not sep or not key or not rest:
            raise UsageError(f"weight {text!r}: expected KEY=PATH or KEY=URL, optionally followed by #SHA256")
        sha: str | None = None
        head, hsep, tail = rest.rpartition("#")
        if hsep and _SHA.match(tail):
            rest, sha = head, tail.lower()
        elif hsep and not is_url(rest):
            raise UsageError(f"weight {text!r}: '{tail}' after '#' is not a sha256 (64 hex digits)")
        return cls(key.strip(), rest, sha)


@dataclass(frozen=True)
class ResolvedWeight:
    file: WeightFile
    source: str
    sha256: str


def check_opset(opset: int) -> None:
    from registry.onnx.build import SUPPORTED_OPSETS

    if opset not in SUPPORTED_OPSETS:
        raise UsageError(f"opset {opset} is not supported (supported: {', '.join(map(str, SUPPORTED_OPSETS))})")


def resolve_weights(fam: Family, given: Sequence[WeightSource] = (), entry: Entry | None = None) -> list[ResolvedWeight]:
    """Which file (and pin) to use for each of the family's weights.

    Given by the user first (pinned by the given sha256, else by the pin the entry recorded, else by
    the upstream pin); else the one the entry records (its URL, or the upstream URL when the recorded
    pin is the upstream one); else the family's upstream file.
    """
    known = {w.key: w for w in fam.weights}
    by_key: dict[str, WeightSource] = {}
    for g in given:
        if g.key not in known:
            names = ", ".join(known) or "none: its graph is the metric"
            raise UsageError(f"family '{fam.name}' has no weight file '{g.key}' (weights: {names})")
        if g.key in by_key:
            raise UsageError(f"weight '{g.key}' given twice")
        by_key[g.key] = g
    recorded: dict[str, dict[str, Any]] = {}
    if entry is not None:
        ups = [u for u in (entry.get("provenance") or {}).get("upstream") or [] if isinstance(u, dict)]
        for i, u in enumerate(ups):
            key = u.get("key") if isinstance(u.get("key"), str) else (fam.weights[i].key if i < len(fam.weights) else None)
            if key:
                recorded[str(key)] = dict(u)
    out = []
    for w in fam.weights:
        if w.key in by_key:
            g = by_key[w.key]
            pinned = recorded.get(w.key, {}).get("sha256")
            sha = g.sha256 or (str(pinned) if isinstance(pinned, str) else w.sha256)  # the pin the entry was built with
            out.append(ResolvedWeight(w, g.source, sha.lower()))
        elif entry is not None:
            rec = recorded.get(w.key)
            if rec is None or not isinstance(rec.get("sha256"), str):
                raise MissingWeight(f"'{entry['id']}' records no {w.key} file it was built from", w.key)
            sha = str(rec["sha256"]).lower()
            if isinstance(rec.get("url"), str):
                out.append(ResolvedWeight(w, str(rec["url"]), sha))
            elif sha == w.sha256:
                out.append(ResolvedWeight(w, w.url, sha))
            else:
                raise MissingWeight(f"'{entry['id']}' was built from a local {w.key} file (sha256 {sha[:16]}...); "
                                    "give that file again", w.key)
        else:
            out.append(ResolvedWeight(w, w.url, w.sha256))
    return out


def upstream_record(r: ResolvedWeight) -> dict[str, Any]:
    """Provenance of one weights file; a file pinned by the user is marked as not the upstream one."""
    official = r.sha256 == r.file.sha256
    rec: dict[str, Any] = {"key": r.file.key, "name": r.file.name if official else f"{r.file.name} (user-pinned, not the upstream file)",
                           "sha256": r.sha256, "license": r.file.license, "official": official}
    if is_url(r.source):
        rec["url"] = r.source
    elif official:
        rec["url"] = r.file.url
    return rec


def fetch_weights(resolved: Sequence[ResolvedWeight], *, cache_dir: Path | None = None, progress: bool = False) -> dict[str, bytes]:
    """key -> bytes, each checked against its pin before anyone parses it."""
    return {r.file.key: fetch_pinned(r.source, r.sha256, r.file.filename, size=r.file.size_for(r.sha256), cache_dir=cache_dir,
                                     progress=progress) for r in resolved}


def stamp(model: Any, props: Mapping[str, str]) -> None:
    """Set the model's ``tinyreg.*`` metadata (sorted, so the bytes stay reproducible)."""
    merged = {p.key: p.value for p in model.metadata_props}
    merged.update(props)
    del model.metadata_props[:]
    for k, v in sorted(merged.items()):
        p = model.metadata_props.add()
        p.key, p.value = k, v


def check_graph(fam: Family, model: Any, opset: int) -> Any:
    """Every check on a graph a family built: opset, I/O contract, declared op set, allowlist, ONNX checker."""
    import onnx

    from registry.onnx.allowlist import check_model, errors_only, load_allowlist
    from registry.onnx.inspect import inspect_model

    info = inspect_model(model)
    if info.opset != opset:  # never a silent other opset
        raise CheckFailed(f"family '{fam.name}' built opset {info.opset}, asked for {opset}")
    if info.io_json() != fam.contract.io_json():
        raise CheckFailed(f"family '{fam.name}' built a graph whose I/O {info.io_json()} breaks its contract {fam.contract.io_json()}")
    if info.op_set() != set(fam.ops):
        raise CheckFailed(f"family '{fam.name}' built op set {sorted(info.op_set())}, not its declared {sorted(fam.ops)}")
    bad = errors_only(check_model(info, load_allowlist(), "fp32"))
    if bad:
        raise CheckFailed(f"family '{fam.name}' built a graph that breaks the op allowlist: {bad[0]}")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise CheckFailed(f"family '{fam.name}' built an invalid graph: {' '.join(str(exc).split())[:300]}") from exc
    return info


def input_conventions(fam: Family) -> dict[str, Any]:
    return {**fam.contract.conventions, "score": fam.meta.score_meaning}


def check_entry_contract(entry: Entry, fam: Family) -> None:
    """An entry used through its family must carry the family's I/O contract and conventions."""
    if entry.get("family") != fam.name:
        raise UsageError(f"entry '{entry.get('id')}' is a {entry.get('family')} model, not {fam.name}")
    if entry.get("io") != fam.contract.io_json():
        raise CheckFailed(f"entry '{entry['id']}' records I/O {entry.get('io')} that breaks the {fam.name} contract")
    conv = entry.get("input_conventions") or {}
    want = input_conventions(fam)
    if {k: v for k, v in conv.items() if k != "score"} != {k: v for k, v in want.items() if k != "score"}:
        raise CheckFailed(f"entry '{entry['id']}' records input conventions that differ from the {fam.name} family's")


def family_fields(fam: Family, entry_id: str, io: dict[str, Any]) -> dict[str, Any]:
    """Fields every entry of a family carries, placeholder or real (the caller adds the rest)."""
    from registry.plugin import Quantise

    m = fam.meta
    fields: dict[str, Any] = {
        "id": entry_id,
        "kind": m.kind.value,
        "family": m.name,
        "onnx": f"{entry_id}.onnx",
        "notes": f"{m.description} Reference: {m.citation}",
        "license": m.license,
        "license_url": m.license_url,
        "license_notes": m.license_notes,
        "io": io,
        "input_conventions": input_conventions(fam),
    }
    if isinstance(fam.quant, Quantise):
        fields["quant_accuracy_budget_plcc"] = fam.quant.budget_plcc
    else:
        fields["quant_accuracy_budget_plcc"] = None
        fields["quant"] = {"policy": "not quantised", "reason": fam.quant.reason}
    return fields


def tool_versions(*names: str) -> dict[str, str]:
    import platform
    from importlib import metadata

    from registry._internal.version import __version__

    out = {"tinyreg": __version__, "python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def export_entry(
    registry_path: Path,
    family: str,
    *,
    weights: Sequence[WeightSource] = (),
    opset: int = 17,
    entry_id: str | None = None,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> Entry:
    """``tinyreg export FAMILY``: real weights (fetched and pin-checked) -> the family's graph -> checked -> the real entry."""
    from registry.families import get_family
    from registry.store.entries import write_entry

    fam = get_family(family)
    check_opset(opset)
    resolved = resolve_weights(fam, weights)
    if fam.weights and importlib.util.find_spec("torch") is None:  # weight files are read with torch: say so before a download
        raise MissingDependency(f"exporting {family} from its weight files (torch)", "export")
    data = fetch_weights(resolved, cache_dir=cache_dir, progress=progress)
    model = fam.build(data, opset)
    upstream = [upstream_record(r) for r in resolved]
    props = {"tinyreg.family": fam.name, "tinyreg.smoke": "false"}
    props.update({f"tinyreg.upstream.{i}.sha256": u["sha256"] for i, u in enumerate(upstream)})
    stamp(model, props)
    info = check_graph(fam, model, opset)
    official = all(u["official"] for u in upstream)
    eid = entry_id or fam.meta.default_id
    fields: dict[str, Any] = {
        **family_fields(fam, eid, info.io_json()),
        "smoke": False,
        "placeholder_for": None,
        "opset": opset,
        "description": f"{fam.meta.title}: {fam.meta.score_meaning}."
        + ("" if official else " Built from user-pinned weights, not the upstream files."),
        "provenance": {"exporter": f"tinyreg.families.{fam.name}/{fam.version}",
                       "tools": tool_versions(*(("torch",) if fam.weights else ()), "onnx", "numpy"),
                       "upstream": upstream},
    }
    return write_entry(registry_path, fields, {fields["onnx"]: model.SerializeToString()})


def entry_weights(entry: Entry, fam: Family, given: Sequence[WeightSource] = (), *, cache_dir: Path | None = None,
                  progress: bool = False) -> dict[str, bytes] | None:
    """The verified weight bytes an entry was built from (``None`` for a smoke entry)."""
    if is_smoke(entry):
        return None
    return fetch_weights(resolve_weights(fam, given, entry), cache_dir=cache_dir, progress=progress)
