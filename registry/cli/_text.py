"""Text for people built from library results: grouped findings, the gate in words, score lines.

Pure functions over plain data (tests call them directly); the sink prints what they return.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from registry.cli._output import num

GROUP_AT = 3  # this many findings that say the same thing become one row
_SUBJECT = re.compile(r"(?<![\w<>])[\w+-]+(?:\.[A-Za-z_][\w+-]*)+")  # a file name inside a message
SUBJECT = "<file>"

UP, DOWN = "\u2191", "\u2193"


@dataclass(frozen=True)
class FindingGroup:
    severity: str
    check: str
    message: str  # the message, with the subject (a file name) replaced by SUBJECT when it varies
    entries: tuple[str, ...]
    subjects: tuple[str, ...]

    @property
    def who(self) -> str:
        """The entry column: the entry itself, or '19 entries' / '6 files'."""
        if len(self.entries) == 1:
            return self.entries[0]
        named = [e for e in self.entries if e != "-"]
        if len(set(named)) == len(self.entries):
            return f"{len(self.entries)} entries"
        return f"{len(self.entries)} files" if not named else f"{len(self.entries)} findings"

    @property
    def listing(self) -> str:
        """Who the group is about, in full (the text lists every member; --json has one finding per member)."""
        named = [e for e in self.entries if e != "-"]
        if len(set(named)) == len(self.entries):
            return ", ".join(self.entries)
        return ", ".join(self.subjects)


def group_findings(findings: Iterable[Any], at: int = GROUP_AT) -> list[FindingGroup]:
    """Findings (``severity``, ``entry``, ``check``, ``message``) grouped when ``at`` or more say the same thing.

    Two findings say the same thing when their check and severity agree and their messages
    agree once the file name they are about is taken out. Order: as the findings came,
    each group where its first member was.
    """
    keyed: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {}
    order: list[tuple[str, str, str]] = []
    for f in findings:
        subjects = _SUBJECT.findall(f.message)
        template = _SUBJECT.sub(SUBJECT, f.message)
        key = (f.severity, f.check, template)
        if key not in keyed:
            keyed[key] = []
            order.append(key)
        keyed[key].append((f.entry, subjects[0] if subjects else "", f.message))
    groups: list[FindingGroup] = []
    for key in order:
        members = keyed[key]
        if len(members) >= at:
            groups.append(FindingGroup(key[0], key[1], key[2], tuple(m[0] for m in members), tuple(m[1] for m in members)))
        else:
            groups += [FindingGroup(key[0], key[1], m[2], (m[0],), (m[1],)) for m in members]
    return groups


def arrow(direction: str) -> str:
    """The direction of a better score as an arrow: up for higher is better, down for lower."""
    return UP if direction.startswith("higher") else DOWN if direction.startswith("lower") else "?"


def worst_of(direction: str) -> str:
    """The summary statistic that holds a pair's worst frame: ``max`` for lower is better, else ``min``."""
    return "max" if direction.startswith("lower") else "min"


def gate_words(r: Any) -> str:
    """One gate result in words: what was measured, on what, the budget, the interval and the verdict.

    ``r`` is a gate result (entry, mode, samples, budget, drop, drop_ci95, plcc, srocc, max_abs_diff,
    passed); an fp16 gate's ``max_abs_budget`` and ``nonfinite`` are said when the result has them.
    """
    over = getattr(r, "over", None)
    samples = (f"all output elements of {r.samples} samples (image-like output)" if over == "elements"
               else f"{r.samples} samples" if over == "samples" else f"{r.samples} sample pairs")
    mode = str(r.mode or "")
    fp16 = mode == "fp16" or getattr(r, "precision", None) == "fp16"
    what = "fp16" if fp16 else "int8"
    label = f"{r.entry} ({'fp16' if fp16 else f'{mode} int8' if mode else 'int8'})"
    digits = 7 if fp16 else 5  # fp16 drops are about 1e-7: PLCC needs its seventh digit
    inputs = str(getattr(r, "inputs", "") or "")
    src = f"; inputs {inputs}" if inputs else ""
    nonfinite = getattr(r, "nonfinite", 0) or 0
    if nonfinite:
        return f"{label}: {nonfinite} non-finite {what} outputs on {samples}, so no correlation is measured{src}"
    lo, hi = r.drop_ci95
    within = hi <= r.budget
    verdict = f"the 95% upper bound {num(hi, 3)} is {'within' if within else 'over'} the budget {num(r.budget, 3)}"
    limit = getattr(r, "max_abs_budget", None)
    limit_txt = ""
    if isinstance(limit, (int, float)):
        limit_txt = f" ({'over' if r.max_abs_diff > limit else 'within'} its limit {num(limit, 3)})"
    return (f"{label}: drop = 1 - PLCC against fp32 on {samples} = {num(r.drop, 3)} "
            f"(95% CI {num(lo, 3)}..{num(hi, 3)}); {verdict}; PLCC {num(r.plcc, digits)}, SROCC {num(r.srocc, 5)}, "
            f"max |{what} - fp32| {num(r.max_abs_diff, 3)}{limit_txt}{src}")


def count_words(total: int, parts: Sequence[tuple[int, str]], noun: str = "pairs") -> str:
    """'5 pairs: 3 scored now, 0 before, 2 failed' (the parts add up to the total)."""
    return f"{total} {noun}: " + ", ".join(f"{n} {what}" for n, what in parts)
