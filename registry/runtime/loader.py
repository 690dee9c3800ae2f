"""``registry.load(id)``: an onnxruntime session built from the very bytes that were hashed."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._internal.hashing import read_file, read_pinned
from registry._internal.paths import confine
from registry.errors import IntegrityError, UsageError
from registry.onnx.inspect import external_ref, external_tensors, parse_model
from registry.store.document import Entry, Registry, find_registry, parse_registry_bytes
from registry.store.types import has_signature, is_smoke, pinned_files

if TYPE_CHECKING:
    from registry.signing.policy import NoPolicy, TrustPolicy

    Trust = str | os.PathLike[str] | TrustPolicy | NoPolicy | None


# onnxruntime execution providers: names, or (name, options) pairs
Providers = Sequence[str | tuple[str, dict[str, str]]]


class SmokeModelWarning(UserWarning):
    """The loaded model is a random-weight smoke placeholder."""


def verified_model_bytes(reg: Registry, entry: Entry, *, int8: bool = False, digests: dict[str, str] | None = None,
                         precision: str | None = None) -> bytes:
    """Model bytes with every external tensor inlined, all read once and checked against pins.

    ``precision`` (fp32, int8, fp16; ``int8=True`` is the older spelling) picks the graph with
    ``registry.runtime.precision.select_graph`` (no gate check here: the gate reads these bytes too).
    ``digests`` (if given) receives path -> sha256 of every file read, so later checks need not hash again.
    """
    from registry.runtime.precision import parse_precision, select_graph

    root = reg.root
    graph = select_graph(entry, parse_precision(precision, int8=int8), require_gate=False)
    rel, want = graph.rel, graph.sha256
    pinned: dict[str, dict[str, Any]] = pinned_files(entry)
    if graph.precision == "fp16" and pinned.get(rel, {}).get("role") != "fp16":
        raise IntegrityError(f"{rel}: the fp16 sibling of '{entry['id']}' is not pinned in files[] with role fp16; "
                             "refusing to load")
    size = pinned.get(rel, {}).get("size")
    data = read_pinned(confine(root, rel, what="onnx"), str(want), size)
    if digests is not None:
        digests[rel] = str(want).lower()
    import onnx

    model = parse_model(data, rel)
    externals = external_tensors(model)
    if not externals:
        return data
    folder = str(Path(rel).parent)
    blobs: dict[str, bytes] = {}
    for where, t in externals:
        ref = external_ref(t, where)
        ext_rel = ref.location if folder == "." else f"{folder}/{ref.location}"
        if ext_rel not in blobs:
            pin = pinned.get(ext_rel)
            if pin is None:
                raise IntegrityError(
                    f"{ext_rel}: external data of '{entry['id']}' ({where}) is not pinned in the registry; refusing to load"
                )
            blobs[ext_rel] = read_pinned(confine(root, ext_rel, what="external data"), pin["sha256"], pin.get("size"))
            if digests is not None:
                digests[ext_rel] = str(pin["sha256"]).lower()
        blob = blobs[ext_rel]
        offset = ref.offset
        length = ref.length if ref.length is not None else len(blob) - offset
        if offset < 0 or length < 0 or offset + length > len(blob):
            raise IntegrityError(f"{ext_rel}: tensor {t.name} ({where}) lies outside the external data file")
        t.raw_data = blob[offset : offset + length]
        t.data_location = onnx.TensorProto.DEFAULT
        del t.external_data[:]
    left = external_tensors(model)
    if left:  # the session below must never open a file by itself
        raise IntegrityError(f"{rel}: {left[0][0]} still refers to external data after inlining; refusing to load")
    out: bytes = model.SerializeToString()
    return out


THREADS_ENV = "TINYREG_THREADS"
MAX_THREADS = 1024


def env_threads() -> int:
    """Intra-op threads from ``$TINYREG_THREADS``; 0 (unset or empty): onnxruntime's default, one per physical core.

    onnxruntime counts the host's cores, not the CPUs a container, a batch job or a parallel test runner
    grants the process; two processes that each spin a thread per core on the same cores run about half as
    fast (measured: two concurrent gate runs on 2 cores, 108 s with the default, 61 s with 1 thread each).
    """
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return 0
    # isdigit alone admits '²' and '١'; the length first: int() refuses more than 4300 digits with a ValueError
    digits = raw.lstrip("0") or "0"
    if not (raw.isascii() and raw.isdigit()) or len(digits) > len(str(MAX_THREADS)) or int(digits) > MAX_THREADS:
        raise UsageError(f"{THREADS_ENV}={raw[:40]!r} is not a number of threads from 0 to {MAX_THREADS} "
                         "(0: one per physical core, onnxruntime's default)")
    return int(digits)


def default_session_options(threads: int = 0) -> Any:
    """Session options tinyreg uses unless told otherwise.

    ``threads`` 0: ``$TINYREG_THREADS`` (``env_threads``), else onnxruntime's default. The variable is checked
    even when ``threads`` is given (a dataset run's share of the cores): a bad value is refused, never ignored.
    Memory patterns are off: for the shipped 13-conv feature metric at 1920x1080 they double peak RSS
    (6.7 GiB -> 3.5 GiB without) for a 3% speed gain (measured, 2 threads).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.enable_mem_pattern = False
    env = env_threads()
    so.intra_op_num_threads = threads or env
    return so


def load(
    entry_id: str,
    registry: str | os.PathLike[str] | None = None,
    *,
    int8: bool = False,
    precision: str | None = None,
    providers: Providers | None = None,
    session_options: Any = None,
    verify_signature: bool | None = None,
    trust: Trust = None,
    now: datetime | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``entry_id``; see ``load_entry``."""
    return load_entry(entry_id, registry, int8=int8, precision=precision, providers=providers,
                      session_options=session_options, verify_signature=verify_signature, trust=trust, now=now)[0]


def load_entry(
    entry_id: str,
    registry: str | os.PathLike[str] | None = None,
    *,
    int8: bool = False,
    precision: str | None = None,
    providers: Providers | None = None,
    session_options: Any = None,
    verify_signature: bool | None = None,
    trust: Trust = None,
    now: datetime | None = None,
) -> tuple[Any, Entry]:
    """(``onnxruntime.InferenceSession``, the entry's row as verified) for ``entry_id``, or IntegrityError on any mismatch.

    The row is the one read under the same lock as the model bytes (and, with a trust
    policy, the one whose signature was checked): take preprocessing and warnings from it.

    ``trust``: a trust policy file (``tinyreg trust ... --out FILE``) or a loaded policy; when
    None, ``$TINYREG_TRUST`` is used if set. With a policy, loading fails closed
    (SignatureError) unless the registry's snapshot verifies under the policy (every file,
    not expired, no older version than the last one seen) and the entry's bundle signs its
    whole row and every file loaded; ``verify_signature`` cannot switch that off.

    ``precision`` ('fp32', 'fp16', 'int8'; ``int8=True`` is the older spelling of 'int8') picks
    the graph; an fp16 sibling loads only when its recorded gate passed on the very files the
    entry pins (``registry.runtime.precision.check_gate``), and so does an int8 sibling asked for
    with ``precision='int8'`` (``int8=True`` loads it as before, ungated).

    ``entry_id`` may be ``oci://HOST/REPO:TAG`` (or ``@sha256:...``): the entry is pulled and
    verified under the policy into the local cache first (docs/distribution.md), then loaded
    from there with the same checks; a policy is required and ``registry`` must be None.

    Without a policy the registry vouches for itself: ``verify_signature`` None (default)
    verifies the entry's bundle when it has one and the registry records a signing
    policy; True requires a valid one.
    """
    data, entry, _ = verified_entry(entry_id, registry, int8=int8, precision=precision, verify_signature=verify_signature,
                                    trust=trust, now=now)
    if is_smoke(entry):
        warnings.warn(
            f"'{entry_id}' is a SMOKE PLACEHOLDER with random weights; its scores mean nothing",
            SmokeModelWarning,
            stacklevel=3,
        )
    return session_from_bytes(data, entry_id, session_options=session_options, providers=providers), entry


def verified_entry(
    entry_id: str,
    registry: str | os.PathLike[str] | None = None,
    *,
    int8: bool = False,
    precision: str | None = None,
    require_gate: bool = True,
    verify_signature: bool | None = None,
    trust: Trust = None,
    now: datetime | None = None,
) -> tuple[bytes, Entry, str]:
    """(self-contained model bytes, the entry's row, the sha256 of the model file loaded), all checked as
    ``load_entry`` describes, without creating a session (a driver checks this before it ships work).
    ``precision`` as for ``load_entry``: the graph of that precision (a sibling only with a passed gate, unless
    ``require_gate`` is False: the gate itself reads a sibling whatever its record says).

    ``trust`` NO_POLICY: the caller resolved that there is no consumer policy (a worker never
    falls back to its own ``$TINYREG_TRUST``). A ``.tinyreg-update/`` in the folder is refused
    (PendingUpdate): readers never apply a journal.
    """
    from registry.signing.policy import resolve_trust
    from registry.store.document import reading

    policy = resolve_trust(trust)
    if entry_id.startswith("oci://"):  # pulled and verified into the local cache first (docs/distribution.md)
        from registry.distribution.puller import cached_registry

        if registry is not None:
            raise UsageError("an oci:// reference names its own registry; give no registry folder", hint="registry")
        entry_id, registry = cached_registry(entry_id, trust=policy, now=now)
    path = find_registry(registry)
    if policy is not None:
        from registry.signing.snapshot import require_state_dir

        require_state_dir()
    with reading(path):
        raw = read_file(path, cap="registry")
        reg = Registry(path, parse_registry_bytes(raw, str(path)))
        from registry.store.schema import require_valid_registry

        require_valid_registry(reg.doc, str(path))  # fields of the wrong type are bad input (exit 2), never a crash
        entry = reg.get(entry_id)
        digests: dict[str, str] = {}
        if precision is not None and precision != "fp32":
            from registry.runtime.precision import parse_precision, select_graph

            # a missing sibling is refused; an ungated one too unless the caller is the gate
            select_graph(entry, parse_precision(precision, int8=int8), require_gate=require_gate)
        data = verified_model_bytes(reg, entry, int8=int8, precision=precision, digests=digests)
        if policy is not None:
            from registry.runtime.trust import enforce_trust

            enforce_trust(reg, entry, policy, registry_bytes=raw, digests=digests, now=now)
        elif verify_signature or (
            verify_signature is None and has_signature(entry) and isinstance(reg.doc.get("signing"), dict)
        ):
            from registry.signing.verify import verify_entry_signature

            verify_entry_signature(reg, entry, digests=digests)
    from registry.runtime.precision import parse_precision, select_graph

    model_rel = select_graph(entry, parse_precision(precision, int8=int8), require_gate=False).rel
    return data, entry, digests[model_rel]


def session_from_bytes(data: bytes, source: str, *, session_options: Any = None, providers: Providers | None = None) -> Any:
    """The one place tinyreg creates an onnxruntime session: only from self-contained model bytes.

    A tensor that still names an external file would make onnxruntime open it by
    itself (relative to the current folder), bytes nobody pinned: refuse that.
    """
    left = external_tensors(parse_model(data, source))
    if left:
        raise IntegrityError(f"{source}: {left[0][0]} refers to external data; refusing to create a session")
    import onnxruntime as ort

    return ort.InferenceSession(data, sess_options=session_options or default_session_options(),
                                providers=providers or ["CPUExecutionProvider"])
