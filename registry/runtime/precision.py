"""Which graph of an entry runs: fp32, or its gated int8 or fp16 sibling. The one sibling-selection function.

An entry's fp32 model is ``onnx``/``sha256``. Its siblings:

=========  =========================  ==================  ===================  ====================
precision  file                       digest field        role in ``files[]``  gate record
=========  =========================  ==================  ===================  ====================
int8       ``<basename>.int8.onnx``   ``int8_sha256``     ``int8``             ``quant.gate``
fp16       ``<basename>.fp16.onnx``   ``fp16_sha256``     ``fp16``             ``fp16.gate``
=========  =========================  ==================  ===================  ====================

Scoring with a sibling requires its recorded gate to have passed *on that very file*: the
fp16 record names the digest it judged (``candidate_sha256``) and the fp32 model it was
judged against (``model_sha256``); both must be the entry's current ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from registry.errors import Error, UsageError
from registry.store.layout import fp16_rel, int8_rel


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


PRECISIONS = tuple(p.value for p in Precision)


@dataclass(frozen=True)
class Graph:
    """The graph of an entry that runs at one precision."""

    precision: str
    rel: str  # path in the registry folder
    sha256: str
    role: str  # its role in files[]
    ext_role: str  # the role of its external data


def parse_precision(value: str | Precision | None, *, int8: bool = False) -> str:
    """A precision name from an option value (``int8=True`` is the older spelling of 'int8')."""
    p = str(value.value if isinstance(value, Precision) else value or "fp32")
    if p not in PRECISIONS:
        raise UsageError(f"precision {p!r}: use {', '.join(PRECISIONS)}")
    if int8 and p not in ("fp32", "int8"):
        raise UsageError(f"the int8 alias and precision {p!r} disagree; name one precision")
    return "int8" if int8 else p


def sibling_sha256(entry: Mapping[str, Any], precision: str) -> str | None:
    key = {"int8": "int8_sha256", "fp16": "fp16_sha256", "fp32": "sha256"}.get(precision)
    if key is None:
        raise UsageError(f"precision {precision!r}: use {', '.join(PRECISIONS)}")
    v = entry.get(key)
    return v if isinstance(v, str) else None


def gate_record(entry: Mapping[str, Any], precision: str) -> dict[str, Any] | None:
    block = entry.get("quant" if precision == "int8" else "fp16")
    gate = block.get("gate") if isinstance(block, dict) else None
    return gate if isinstance(gate, dict) else None


def select_graph(entry: Mapping[str, Any], precision: str = "fp32", *, require_gate: bool = True) -> Graph:
    """The graph ``precision`` runs for ``entry``; refuses a missing sibling or (``require_gate``) one not gated.

    This is the single place that decides which file a load or a score reads.
    """
    eid = entry.get("id")
    onnx = str(entry.get("onnx", ""))
    if precision == "fp32":
        return Graph("fp32", onnx, str(entry.get("sha256")), "onnx", "external_data")
    want = sibling_sha256(entry, precision)
    if want is None:
        raise UsageError(f"entry '{eid}' has no {precision} sibling (make one: tinyreg quantize {eid}"
                         f"{', mode fp16' if precision == 'fp16' else ''})")
    rel = int8_rel(onnx) if precision == "int8" else fp16_rel(onnx)
    if require_gate:
        check_gate(entry, precision)
    return Graph(precision, rel, want, precision, f"{precision}_external_data")


def check_gate(entry: Mapping[str, Any], precision: str) -> None:
    """Refuse a sibling whose recorded gate did not pass, or passed on other files than the entry's."""
    eid = entry.get("id")
    gate = gate_record(entry, precision)
    if gate is None or gate.get("passed") is not True:
        if gate is None:
            why = "has no recorded gate"
        elif gate.get("nonfinite"):
            why = f"did not pass its gate ({gate.get('nonfinite')} non-finite outputs)"
        else:
            why = f"did not pass its gate (drop CI {gate.get('drop_ci95')}, budget {gate.get('budget')})"
        raise UsageError(f"entry '{eid}': the {precision} sibling {why}; refusing to score with it")
    ci, budget = gate.get("drop_ci95"), gate.get("budget")
    upper = _number(ci[1]) if isinstance(ci, list) and len(ci) == 2 else None
    recorded = _number(budget)
    if upper is None or recorded is None or upper > recorded:
        raise UsageError(f"entry '{eid}': the {precision} gate record says passed, but its drop CI {ci} is not within "
                         f"its budget {budget}; refusing to score with it")
    # the record's own budget is no authority: a hand-edited record that raised it is over the entry's budget
    declared = _entry_budget(entry, precision)
    if declared is not None and recorded > declared:
        raise UsageError(f"entry '{eid}': the {precision} gate record's budget {budget} is looser than the entry's "
                         f"{declared}; refusing to score with it (run the gate again)")
    if precision == "fp16":
        # the record names the files it judged: a record copied from another entry or left from older files is refused
        if gate.get("candidate_sha256") != entry.get("fp16_sha256") or gate.get("model_sha256") != entry.get("sha256"):
            raise UsageError(f"entry '{eid}': the fp16 gate record was made on other files than the entry pins; "
                             "refusing to score with it (run the fp16 gate again)")
        limit, err = _number(gate.get("max_abs_budget")), _number(gate.get("max_abs_diff"))
        if limit is None or err is None or err > limit:
            raise UsageError(f"entry '{eid}': the fp16 gate record's max |score error| {err} is not within {limit}; "
                             "refusing to score with it")
        policy_limit = _fp16_max_abs(entry)
        if policy_limit is not None and limit > policy_limit:
            raise UsageError(f"entry '{eid}': the fp16 gate record's max |score error| limit {limit} is looser than "
                             f"the family's {policy_limit}; refusing to score with it (run the fp16 gate again)")


def _number(value: object) -> float | None:
    """A gate statistic as a float; None for anything else (a bool is no number here)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


FP16_MAX_ABS = 1e-3  # the fp16 gate's max |score error| for entries without a family
FP16_BUDGET_PLCC = 1e-4  # the fp16 PLCC budget for entries without a family


def _fp16_policy(entry: Mapping[str, Any]) -> Any:
    """The family's fp16 policy (``registry.plugin.Fp16``), or None (no family, or it refuses fp16)."""
    from registry.families import get_family
    from registry.plugin import Fp16

    name = entry.get("family")
    if not isinstance(name, str):
        return None
    pol = get_family(name).fp16
    return pol if isinstance(pol, Fp16) else None


def precision_budget(entry: Mapping[str, Any], precision: str) -> float:
    """The PLCC budget the entry gates a sibling of ``precision`` on (fp16: else its family's, else the default)."""
    key = "fp16_accuracy_budget_plcc" if precision == "fp16" else "quant_accuracy_budget_plcc"
    recorded = entry.get(key)
    if isinstance(recorded, (int, float)) and not isinstance(recorded, bool):
        return float(recorded)
    if precision == "fp16":
        pol = _fp16_policy(entry)
        return float(pol.budget_plcc) if pol is not None else FP16_BUDGET_PLCC
    raise UsageError(f"entry '{entry.get('id')}' has no {key}")


def fp16_max_abs(entry: Mapping[str, Any]) -> float:
    """The fp16 gate's limit on the max |score error|: the family's, else the default."""
    pol = _fp16_policy(entry)
    return float(pol.max_abs_error) if pol is not None else FP16_MAX_ABS


def _entry_budget(entry: Mapping[str, Any], precision: str) -> float | None:
    """The PLCC budget the entry declares for ``precision`` (fp16: else its family's default); None if unknown."""
    try:
        return precision_budget(entry, precision)
    except Error:  # no declared budget, or a family not installed: verify reports those
        return None


def _fp16_max_abs(entry: Mapping[str, Any]) -> float | None:
    try:
        return fp16_max_abs(entry)
    except Error:  # a family not installed: verify reports it
        return None
