#!/usr/bin/env python3
"""Measure the int8-vs-fp32 PLCC drop of tiny models (the VMAFx fork's script shape).

    measure_quant_drop.py MODEL.onnx [--registry PATH] [--seed N] [--json]
    measure_quant_drop.py --all [--registry PATH]

Exit 0: every gated model within budget; 1: a model over budget; 2: error.
A thin entry point over ``tinyreg quant-gate``: the verdict uses representative
inputs and a bootstrap 95% interval (see registry/quant_gate.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv: list[str] | None = None) -> int:
    try:
        import onnxruntime  # noqa: F401

        from registry.errors import EXIT_USAGE, Error
    except ImportError as exc:
        print(f"measure_quant_drop: tinyreg and onnxruntime are not importable ({exc.name}); run 'make install' and use "
              ".venv/bin/python", file=sys.stderr)
        return 2
    from registry.quant.run import gate
    from registry.store.document import find_registry, read_registry

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="fp32 ONNX path of a registry entry")
    p.add_argument("--all", action="store_true", help="every quantised entry")
    p.add_argument("--registry", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        if bool(args.model) == bool(args.all):
            print("measure_quant_drop: give a model path or --all", file=sys.stderr)
            return EXIT_USAGE
        reg_path = find_registry(args.registry if args.registry else (Path(args.model).resolve().parent if args.model else None))
        entry_id = None
        if args.model:
            reg = read_registry(reg_path)
            target = Path(args.model).resolve()
            matches = [e for e in reg.entries if (reg.root / str(e.get("onnx"))).resolve() == target]
            if not matches:
                print(f"measure_quant_drop: {args.model} is not the model of any entry in {reg_path}", file=sys.stderr)
                return EXIT_USAGE
            entry_id = str(matches[0]["id"])
        run = gate(reg_path, entry_id, seed=args.seed)
    except Error as exc:
        print(f"measure_quant_drop: {exc.diagnostics()}", file=sys.stderr)
        return exc.exit_code if exc.exit_code != 1 else EXIT_USAGE
    for eid, why in run.refused:
        print(f"measure_quant_drop: {eid}: not gated: {why}", file=sys.stderr)
    for r in run.results:
        if args.json:
            print(json.dumps(r.as_json(), sort_keys=True))
        else:
            print(f"{'PASS' if r.passed else 'FAIL'} {r.entry}: drop={r.drop:.6f} ci95_upper={r.drop_ci95[1]:.6f} "
                  f"budget={r.budget} plcc={r.plcc:.6f} srocc={r.srocc:.6f} n={r.samples}")
    return run.exit_code


if __name__ == "__main__":
    sys.exit(main())
