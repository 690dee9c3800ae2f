#!/usr/bin/env python3
"""Build a gate input set of libvmaf feature vectors: (N, 6) float32, one .npz array, a row per frame.

    build_feature_inputs.py OUT.npz LOG... [--name features] [--features adm2,vif_scale0,...]

LOG: libvmaf JSON (--json) or CSV (--csv) logs of your own encodes. The default features are the
canonical six the VMAFx regressors take, in their sidecars' order: adm2, vif_scale0, vif_scale1,
vif_scale2, vif_scale3, motion2 (logged as integer_adm2 etc. by libvmaf 2.x). Then:
    tinyreg quant-gate vmaf_tiny_v3 --inputs OUT.npz
Exit 0 written, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv: list[str] | None = None) -> int:
    from registry.errors import Error
    from registry.media.inputsets import CANONICAL_6, build_feature_set, write_input_set

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("logs", nargs="+", type=Path)
    p.add_argument("--name", default="features", help="the model's input name (default: features)")
    p.add_argument("--features", default=",".join(CANONICAL_6), help="feature order (default: the canonical six)")
    args = p.parse_args(argv)
    try:
        feats = build_feature_set(args.logs, [f.strip() for f in args.features.split(",") if f.strip()])
        write_input_set(args.out, {args.name: feats})
    except Error as exc:
        print(f"build_feature_inputs: {exc.diagnostics()}", file=sys.stderr)
        return exc.exit_code
    print(f"{args.out}: '{args.name}' {list(feats.shape)} float32 from {len(args.logs)} log(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
