"""Gate (and quantise) any entry on a pinned input set, for entries that name no family.

The input set is an ``.npz`` with one array per model input name, samples along
the first axis. It is read with ``allow_pickle=False`` from bytes that were read
once (and, for a pinned set, hashed and checked), checked against the entry's
``io`` (names, dtypes, shapes), copied into the registry folder and pinned in
``files[]`` with the role ``gate_inputs``; the entry records it in
``quant_gate_inputs`` so later gates reuse it.

Each sample is run on its own (``arr[i:i+1]``), as the runtime runs one frame or
one feature vector at a time: dynamic quantisation picks its activation scale per
call, so batching would gate a different computation. The statistics are the
family gate's (``registry.quant.gate``): PLCC of fp32 vs int8, bootstrap 95%
interval of the drop, pass only when its upper end is within the entry's
``quant_accuracy_budget_plcc``. Scalar-per-sample outputs (a score) are compared
over samples. Image-like outputs (a filter's frame) are compared over all output
elements; the interval then resamples whole samples (the elements of one frame
are not independent draws), from per-sample sums.
"""

from __future__ import annotations

import io
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from registry._internal.hashing import read_file, read_pinned, sha256_bytes
from registry._internal.jsonio import loads_json
from registry._internal.paths import confine
from registry._internal.safeio import CAPS
from registry.errors import CheckFailed, InputError, UsageError
from registry.quant.gate import (  # noqa: F401  (re-exported: the input-set gate is the one gate)
    Gate,
    GateResult,
    PinnedInputs,
    cluster_bootstrap_drop_ci,
    compare_outputs,
    run_outputs,
)
from registry.store.document import Entry, Registry, read_registry
from registry.store.layout import inputs_rel

ROLE = "gate_inputs"
FIELD: Final = "quant_gate_inputs"
MIN_SAMPLES = 8


class NoGateInputs(UsageError):
    """An entry without a family has no pinned input set to gate on."""


InputGateResult = GateResult  # a gate result on a pinned input set (``over``, ``inputs``, ``inputs_sha256`` set)


def no_inputs_message(entry_id: str) -> str:
    return (f"entry '{entry_id}' names no family and has no pinned gate input set, so there is nothing representative "
            "to gate it on (uniform noise is not a substitute): give it an input set (.npz, one array per model "
            "input, samples along the first axis)")


MAX_INPUT_BYTES = 4 << 30  # all arrays together, as declared in the archive and in each array's header


# what reading a damaged archive raises: zipfile (BadZipFile, NotImplementedError for an unknown version or method,
# RuntimeError for encryption), zlib, and numpy's header parser (it tokenizes the header: TokenError, SyntaxError)
_UNREADABLE = (zipfile.BadZipFile, EOFError, ValueError, OSError, SyntaxError, tokenize.TokenError, RuntimeError, zlib.error)


def _check_sizes(data: bytes, source: str) -> None:
    """Refuse an archive whose members or array headers declare more than MAX_INPUT_BYTES before anything is allocated.

    The set may come from a registry folder an attacker edited: a small file must not make the gate allocate
    terabytes (numpy allocates the shape a header declares before reading the data).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
            if sum(m.file_size for m in members) > MAX_INPUT_BYTES:
                raise InputError(f"{source}: arrays larger than {MAX_INPUT_BYTES >> 30} GiB in all; refused")
            for m in members:
                with zf.open(m) as fh:
                    version = np.lib.format.read_magic(fh)
                    shape, _, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0(fh))
                    if dtype.hasobject:
                        raise InputError(f"{source}: {m.filename} holds objects that only unpickling could read; refused")
                    if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > m.file_size:
                        raise InputError(f"{source}: {m.filename} declares more data than it holds; refused")
    except _UNREADABLE as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{source}: not a readable .npz ({exc.__class__.__name__})") from exc


def parse_npz(data: bytes, source: str) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` read from ``data`` (never unpickled; sizes checked before anything is allocated)."""
    if data[:6] == b"\x93NUMPY":  # np.load would return (and allocate) the bare array, then fail as an archive
        raise InputError(f"{source}: a single .npy array, not an .npz with one array per model input "
                         "(numpy.savez(path, **{input_name: array}) writes one)")
    if data[:4] != b"PK\x03\x04":
        raise InputError(f"{source}: not an .npz archive (a zip of .npy arrays, one per model input)")
    _check_sizes(data, source)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise InputError(f"{source}: a single .npy array, not an .npz with one array per model input")
            return {k: np.asarray(npz[k]) for k in npz.files}
    except InputError:
        raise
    except ValueError as exc:  # object arrays need pickle: refused
        raise InputError(f"{source}: holds an array that only unpickling could read; refused ({exc})") from exc
    except _UNREADABLE as exc:
        raise InputError(f"{source}: not a readable .npz ({exc.__class__.__name__})") from exc


def check_inputs(arrays: dict[str, np.ndarray], entry: Entry, source: str) -> int:
    """Check the arrays against the entry's ``io``; returns the number of samples."""
    io_ = entry.get("io")
    if not isinstance(io_, dict) or not io_.get("inputs"):
        raise UsageError(f"entry '{entry['id']}' records no io (schema_version 2 entries record it)")
    specs = {str(t["name"]): t for t in io_["inputs"]}
    if set(arrays) != set(specs):
        raise InputError(f"{source}: holds arrays {', '.join(sorted(arrays)) or '(none)'} but the inputs of "
                         f"'{entry['id']}' are {', '.join(sorted(specs))} (one array per input, named as the input)")
    counts = set()
    for name, t in sorted(specs.items()):
        arr = arrays[name]
        shape = list(t.get("shape") or [])
        want = str(t.get("dtype"))
        if arr.dtype != np.dtype(want if want != "float16" else np.float16):
            raise InputError(f"{source}: input '{name}' is {arr.dtype}, the model takes {want}")
        if not shape or (isinstance(shape[0], int) and shape[0] != 1):
            raise InputError(f"input '{name}' of '{entry['id']}' has shape {shape}: no batch axis of size 1 or dynamic "
                             "to run one sample at a time")
        if arr.ndim != len(shape):
            raise InputError(f"{source}: input '{name}' has shape {list(arr.shape)}; the model takes {shape} "
                             "(samples along the first axis)")
        for axis, (got, dim) in enumerate(zip(arr.shape[1:], shape[1:], strict=True), start=1):
            if isinstance(dim, int) and got != dim:
                raise InputError(f"{source}: input '{name}' has shape {list(arr.shape)}; the model takes {shape} "
                                 f"(axis {axis} must be {dim})")
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            raise InputError(f"{source}: input '{name}' holds non-finite values")
        counts.add(int(arr.shape[0]))
    if len(counts) != 1:
        raise InputError(f"{source}: the arrays hold different numbers of samples ({sorted(counts)})")
    n = counts.pop()
    if n < MIN_SAMPLES:
        raise InputError(f"{source}: {n} samples; the gate needs at least {MIN_SAMPLES}")
    return n


def run_samples(model: bytes, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The first output of ``model`` for each sample, run one at a time (the gate's own runner)."""
    return run_outputs(model, PinnedInputs(arrays, "", "").feeds({}, 0))


def judge(entry: Entry, fp32: bytes, candidate: bytes, arrays: dict[str, np.ndarray], *, seed: int, inputs: str,
          inputs_sha256: str, mode: str | None = None, precision: str = "int8") -> GateResult:
    """The gate (``registry.quant.gate.Gate``) on a pinned input set."""
    reg = Registry(Path("."), {})  # not read: the fp32 bytes are given
    gate = Gate.prepare(reg, entry, seed=seed, fp32_bytes=fp32, source=PinnedInputs(arrays, inputs, inputs_sha256),
                        precision=precision)
    return gate.judge(candidate, mode)


@dataclass(frozen=True)
class InputSet:
    arrays: dict[str, np.ndarray]
    data: bytes  # the .npz bytes that were parsed
    source: str
    new: bool  # given now (to be copied and pinned) rather than the entry's pinned set


def input_set(reg: Registry, entry: Entry, inputs: Path | None) -> InputSet:
    """The set given now, else the entry's pinned one; checked against the entry's io."""
    if inputs is not None:
        data = read_file(inputs, cap="inputs")
        source, new = str(inputs), True
    else:
        rel = entry.get(FIELD)
        if not isinstance(rel, str):
            raise NoGateInputs(no_inputs_message(str(entry["id"])))
        pin = next((f for f in entry.get("files") or [] if f.get("path") == rel and f.get("role") == ROLE), None)
        if pin is None:
            raise InputError(f"entry '{entry['id']}': gate input set {rel} is not pinned in files[]")
        data = read_pinned(confine(reg.root, rel, what="gate input set"), str(pin["sha256"]), pin.get("size"), CAPS["inputs"])
        source, new = rel, False
    arrays = parse_npz(data, source)
    check_inputs(arrays, entry, source)
    return InputSet(arrays, data, source, new)


def require_v2(reg: Registry) -> None:
    if reg.is_legacy:
        raise UsageError(f"{reg.path} is schema_version {reg.schema_version}: a gate input set is pinned in the entry's "
                         "files, which schema_version 2 has ('tinyreg migrate' converts the registry)")


def pin_input_set(registry_path: Path, entry: Entry, s: InputSet, extra: dict[str, Any] | None = None,
                  artifacts: dict[str, bytes] | None = None) -> Entry:
    """Copy the set into the registry folder and pin it (role ``gate_inputs``), with ``extra`` fields, in one update.

    ``entry`` is the row the caller computed ``extra`` and ``artifacts`` from: if the entry is no longer
    that row when the update would land, nothing is written (ConflictError).
    """
    from registry.store.document import expect_row
    from registry.store.entries import write_entry

    entry_id = str(entry["id"])
    rel = inputs_rel(str(entry["onnx"]))
    files = dict(artifacts or {})
    files[rel] = s.data
    return write_entry(registry_path, {"id": entry_id, FIELD: rel, **(extra or {})}, files, new_artifact=False,
                       expect=expect_row(entry))


def gate_on_inputs(registry_path: Path, entry_id: str, *, inputs: Path | None = None, seed: int = 0,
                   precision: str = "int8") -> GateResult:
    """Gate the entry's sibling of ``precision`` on its input set (``inputs``, which is then pinned, or the pinned one)."""
    from registry.runtime.loader import verified_model_bytes
    from registry.runtime.precision import sibling_sha256

    reg = read_registry(registry_path)
    entry = reg.get(entry_id)
    if sibling_sha256(entry, precision) is None:
        raise UsageError(f"entry '{entry_id}' has no {precision} sibling to gate")
    s = input_set(reg, entry, inputs)
    if s.new:
        require_v2(reg)
    rel = inputs_rel(str(entry["onnx"])) if s.new else str(entry[FIELD])
    res = judge(entry, verified_model_bytes(reg, entry), verified_model_bytes(reg, entry, precision=precision), s.arrays,
                seed=seed, inputs=rel, inputs_sha256=sha256_bytes(s.data).sha256, precision=precision)
    if s.new:
        pin_input_set(registry_path, entry, s)
    return res


NO_FAMILY_POLICY_OPS = ("Conv", "MatMul", "Gemm")
NO_FAMILY_RATIONALE = "entry without a family: weights of Conv, MatMul and Gemm to int8 (dynamic), every other operator fp32"


def quantize_dynamic_bytes(fp32: bytes, op_types: tuple[str, ...] = NO_FAMILY_POLICY_OPS) -> bytes:
    """Dynamic int8 (per-channel uint8 weights) of every node of ``op_types``: the one quantiser, with an all-nodes policy."""
    from registry.plugin import Quantise
    from registry.quant.quantize import quantize_bytes

    pol = Quantise(op_types=op_types, node_prefixes=("",), rationale=NO_FAMILY_RATIONALE, budget_plcc=0.0)
    return quantize_bytes(fp32, "dynamic", pol, None, None)


def quantize_on_inputs(registry_path: Path, entry_id: str, *, inputs: Path | None = None, mode: str | None = None,
                       gate_seed: int = 0) -> Entry:
    """Dynamic int8 sibling of an entry without a family, written only if it passes the gate on the input set."""
    from registry.export.smoke import tool_versions
    from registry.onnx.allowlist import check_model, errors_only, load_allowlist
    from registry.onnx.inspect import inspect_bytes
    from registry.runtime.loader import verified_model_bytes
    from registry.store.layout import int8_rel

    reg = read_registry(registry_path)
    require_v2(reg)
    entry = reg.get(entry_id)
    if mode not in (None, "dynamic"):
        raise UsageError(f"entry '{entry_id}' names no family: only dynamic quantisation is offered (static needs a "
                         "calibration set distinct from the gate's inputs)")
    s = input_set(reg, entry, inputs)
    fp32 = verified_model_bytes(reg, entry)
    op_types, rationale = NO_FAMILY_POLICY_OPS, NO_FAMILY_RATIONALE
    q = quantize_dynamic_bytes(fp32, op_types)
    bad = errors_only(check_model(inspect_bytes(q, "int8"), load_allowlist(), "int8"))
    if bad:
        raise CheckFailed(f"dynamic int8 graph breaks the int8 allowlist profile: {bad[0]}")
    rel = inputs_rel(str(entry["onnx"]))
    res = judge(entry, fp32, q, s.arrays, seed=gate_seed, mode="dynamic", inputs=rel, inputs_sha256=sha256_bytes(s.data).sha256)
    if not res.passed:
        raise CheckFailed(f"the dynamic int8 candidate of '{entry_id}' is over budget {res.budget} (drop {res.drop:.5f}, "
                          f"95% upper {res.drop_ci95[1]:.5f}, PLCC over {res.over}); nothing written")
    record = {"mode": "dynamic", "settings": {"format": "dynamic", "per_channel": True, "weight_type": "uint8",
                                              "op_types": list(op_types), "kept_fp32": rationale,
                                              "tools": tool_versions("onnxruntime", "onnx")},
              "gate": res.as_json()}
    artifacts = {int8_rel(str(entry["onnx"])): q}
    artifacts.update(_sidecar_int8(reg, entry, q))
    return pin_input_set(registry_path, entry, s, {"quant_mode": "dynamic", "quant": record, "int8_sha256": sha256_bytes(q).sha256},
                         artifacts)


def _sidecar_int8(reg: Registry, entry: Entry, int8: bytes) -> dict[str, bytes]:
    """An adopted (VMAFx) sidecar that records the int8 sibling's digest gets the new one (tinyreg's own are rewritten)."""
    from registry.store.layout import sidecar_rel
    from registry.store.sidecar import patch_sidecar

    rel = sidecar_rel(str(entry["onnx"]))
    path = confine(reg.root, rel, what="sidecar")
    if not path.is_file():
        return {}
    data = read_file(path)
    try:
        doc = loads_json(data, rel)
    except InputError:
        return {}
    if not isinstance(doc, dict) or "tinyreg_sidecar_version" in doc:
        return {}
    changes: dict[str, Any] = {k: v for k, v in (("int8_sha256", sha256_bytes(int8).sha256), ("quant_mode", "dynamic"))
                               if k in doc and doc[k] != v}
    if not changes:
        return {}
    new = patch_sidecar(data, changes)
    if new is None:
        raise InputError(f"{rel}: cannot record the new int8 digest in this sidecar; nothing written")
    return {rel: new}
