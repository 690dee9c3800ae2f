"""``tinyreg quantize``: an int8 sibling that passes the gate, or nothing.

Static post-training quantisation (QDQ, per-channel int8 weights, uint8
activations) of the operators the family allows; if the gate finds the static
model over budget, dynamic quantisation is tried, as the design memo asks.
Nothing is written unless a candidate passes the gate.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from registry.errors import CheckFailed, InputError, MissingDependency, UsageError
from registry.store.document import Entry, find_registry, read_registry
from registry.store.layout import calibration_rel as _calibration_rel
from registry.store.layout import int8_rel

if TYPE_CHECKING:
    from registry.plugin import Family, Quantise

CALIBRATION_SEED = 1000  # disjoint from the gate's seeds


def calibration_rel(entry: Entry) -> str:
    return _calibration_rel(str(entry["onnx"]))


def calibration_pairs(fam: Family, pol: Quantise, calibration_dir: Path | None, size: tuple[int, int]) -> Any:
    """uint8 array [N, K, H, W, 3]: the K images (roles, in the family's sample order) of N samples, RGB."""
    from registry.media.images import distort, read_image, resize, to_uint8

    out: list[list[np.ndarray]] = []
    if calibration_dir is not None:
        files = sorted(p for p in calibration_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"))
        if not files:
            raise InputError(f"{calibration_dir}: no images (png, jpg, bmp, tif) to calibrate with")
        rng = np.random.default_rng(CALIBRATION_SEED)
        kinds = ("blur", "noise", "jpeg", "contrast", "shift")
        for i, f in enumerate(files[: max(pol.calibration_pairs, 1) * 4]):
            ref = resize(read_image(f), *size)
            out.append([ref, distort(ref, kinds[i % len(kinds)], float(rng.uniform(0.1, 1.0)), rng)])
    else:
        out = [list(s.images.values()) for s in fam.samples(pol.calibration_pairs, size, CALIBRATION_SEED)]
    return np.stack([np.stack([to_uint8(im) for im in images]) for images in out])


def calibration_roles(fam: Family) -> list[str]:
    return list(next(iter(fam.samples(1, (16, 16), CALIBRATION_SEED))).images)


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def strip_unused_imports(model: Any) -> list[str]:
    """Drop opset imports that no node uses (ORT's quantiser and pre-processing add some)."""
    from registry.onnx.inspect import STD_DOMAIN, canon_domain, inspect_model

    used = inspect_model(model).used_domains() | {STD_DOMAIN}
    keep = [o for o in model.opset_import if canon_domain(o.domain) in used]
    dropped = sorted(canon_domain(o.domain) for o in model.opset_import if canon_domain(o.domain) not in used)
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return dropped


@contextlib.contextmanager
def quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization logs advice on the root logger; keep the CLI's stderr to one line."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _nodes(model: Any, pol: Quantise) -> list[str]:
    return [n.name for n in model.graph.node if n.op_type in pol.op_types and n.name.startswith(pol.node_prefixes)]


def quantize_bytes(fp32: bytes, mode: str, pol: Quantise, calib: np.ndarray | None, fam: Family | None) -> bytes:
    """Quantise fp32 model bytes; returns int8 model bytes (self-contained, unused imports stripped).

    The one quantiser: family entries (static or dynamic) and entries without a family (dynamic,
    every node of the policy's op types) come through here.
    """
    try:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
    except ImportError as exc:
        raise MissingDependency("quantisation (onnxruntime.quantization)", "export") from exc
    model = onnx.load_from_string(fp32)
    nodes = _nodes(model, pol)
    if not nodes:
        raise UsageError(f"the graph has no {', '.join(pol.op_types)} node the quantisation policy selects")
    every = len(nodes) == sum(n.op_type in pol.op_types for n in model.graph.node)
    only: list[str] | None = None if every else nodes  # every node of the op types: no name list (unnamed nodes too)
    with tempfile.TemporaryDirectory() as d, quiet_root_logger():
        src, dst = Path(d) / "fp32.onnx", Path(d) / "int8.onnx"
        src.write_bytes(fp32)
        if mode == "static":
            from registry.plugin import Sample

            assert calib is not None and fam is not None
            family = fam
            pairs = list(calib)
            roles = calibration_roles(fam)

            class Reader(CalibrationDataReader):  # type: ignore[misc]
                def __init__(self) -> None:
                    self._it: Iterator[Any] = iter(pairs)

                def get_next(self) -> dict[str, np.ndarray] | None:
                    images = next(self._it, None)
                    if images is None:
                        return None
                    imgs = {r: im.astype(np.float32) / 255.0 for r, im in zip(roles, images, strict=True)}
                    return family.feeds(Sample("calibration", imgs))

            quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=list(pol.op_types),
                            nodes_to_quantize=only, per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8)
        elif mode == "dynamic":
            quantize_dynamic(str(src), str(dst), op_types_to_quantize=list(pol.op_types), nodes_to_quantize=only,
                             per_channel=True, weight_type=QuantType.QUInt8)
        else:
            raise UsageError(f"unknown quantisation mode {mode!r} (static, dynamic)")
        q = onnx.load(str(dst), load_external_data=True)
    strip_unused_imports(q)
    q.producer_name, q.producer_version = "tinyreg", ""
    out: bytes = q.SerializeToString()
    return out


def quantize_entry(
    registry: Path | None,
    entry_id: str,
    *,
    mode: str | None = None,
    calibration_dir: Path | None = None,
    gate_seed: int = 0,
    inputs: Path | None = None,
    trust: Any = None,
) -> Entry:
    """Quantise, gate, and (only on a pass) write ``<basename>.int8.onnx`` with its pins and record.

    ``mode='fp16'`` writes the fp16 sibling instead (``registry.quant.fp16.fp16_entry``), through the same gate.

    An entry without a family is quantised (dynamic) and gated on its input set (``inputs`` or the pinned one).
    ``trust``: a consumer policy (default ``$TINYREG_TRUST``) the fp32 model must verify under first.
    """
    from registry.quant.gate import require_trusted

    require_trusted(find_registry(registry), [entry_id], trust)
    from registry.export.smoke import tool_versions
    from registry.onnx.allowlist import check_model, errors_only, load_allowlist
    from registry.onnx.inspect import inspect_bytes
    from registry.quant.gate import Gate
    from registry.runtime.loader import verified_model_bytes
    from registry.store.document import expect_row
    from registry.store.entries import write_entry

    if mode == "fp16":
        from registry.quant.fp16 import fp16_entry

        if calibration_dir is not None:
            raise UsageError("an fp16 conversion has no calibration set (calibration is for static int8)")
        return fp16_entry(registry, entry_id, gate_seed=gate_seed, inputs=inputs)
    path = find_registry(registry)
    reg = read_registry(path)
    entry = reg.get(entry_id)
    if reg.is_legacy:
        raise UsageError("quantize writes schema_version 2 registries only")
    if inputs is not None or not isinstance(entry.get("family"), str):
        from registry.quant.inputs import quantize_on_inputs

        return quantize_on_inputs(path, entry_id, inputs=inputs, mode=mode, gate_seed=gate_seed)
    from registry.plugin import Quantise
    from registry.quant.gate import entry_family

    fam = entry_family(entry)
    pol = fam.quant
    if not isinstance(pol, Quantise):
        raise UsageError(f"family '{fam.name}' is not quantised: {pol.reason}")
    fp32 = verified_model_bytes(reg, entry)
    calib = calibration_pairs(fam, pol, calibration_dir, pol.calibration_size)
    gate = Gate.prepare(reg, entry, seed=gate_seed, fp32_bytes=fp32)  # inputs and fp32 scores once for all candidates
    modes = [mode] if mode else ["static", "dynamic"]
    tried: list[dict[str, Any]] = []
    allow = load_allowlist()
    for m in modes:
        q = quantize_bytes(fp32, m, pol, calib if m == "static" else None, fam)
        bad = errors_only(check_model(inspect_bytes(q, "int8"), allow, "int8"))
        if bad:
            raise CheckFailed(f"{m} int8 graph breaks the int8 allowlist profile: {bad[0]}")
        res = gate.judge(q, m)
        tried.append(res.as_json())
        if res.passed:
            break
    else:
        summary = "; ".join(f"{t['mode']}: drop {t['drop']:.5f}, 95% upper {t['drop_ci95'][1]:.5f}" for t in tried)
        raise CheckFailed(f"no int8 candidate of '{entry_id}' is within budget {entry['quant_accuracy_budget_plcc']} ({summary}); "
                          "nothing written")
    chosen = tried[-1]
    calib_rel = calibration_rel(entry)
    artifacts = {int8_rel(str(entry["onnx"])): q}
    record: dict[str, Any] = {
        "mode": chosen["mode"],
        "settings": {"format": "QDQ" if chosen["mode"] == "static" else "dynamic", "per_channel": True,
                     "activation_type": "uint8" if chosen["mode"] == "static" else "dynamic uint8", "weight_type": "int8"
                     if chosen["mode"] == "static" else "uint8", "op_types": list(pol.op_types), "node_prefixes": list(pol.node_prefixes),
                     "kept_fp32": pol.rationale, "tools": tool_versions("onnxruntime", "onnx")},
        "gate": chosen,
        "tried": [{"mode": t["mode"], "drop": t["drop"], "drop_ci95": t["drop_ci95"], "passed": t["passed"]} for t in tried],
    }
    fields: dict[str, Any] = {"id": entry_id, "quant_mode": chosen["mode"], "quant": record, "int8_sha256": "0" * 64}
    if chosen["mode"] == "static":
        artifacts[calib_rel] = npy_bytes(calib)
        record["calibration"] = {"source": str(calibration_dir.name) if calibration_dir else f"{fam.name} representative inputs",
                                 "pairs": int(calib.shape[0]), "size": list(pol.calibration_size), "seed": CALIBRATION_SEED,
                                 "format": f"uint8 [N, {calib.shape[1]} ({', '.join(calibration_roles(fam))}), H, W, RGB]"}
        fields["quant_calibration_set"] = calib_rel
    else:
        fields["quant_calibration_set"] = None
    # the registry was read without the lock tens of seconds ago: commit only if the fp32 model is still that one
    return write_entry(path, fields, artifacts, new_artifact=False, expect=expect_row(entry))
