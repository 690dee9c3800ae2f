#!/usr/bin/env python3
"""Build a gate input set of luma frames: (N, 1, SIZE, SIZE) float32 in [0, 1], one .npz array.

    build_frame_inputs.py OUT.npz SOURCE... [--name frame] [-n 64] [--size 224] [--seed 0] [--distorted 0.75]
    build_frame_inputs.py OUT.npz --natural ...

SOURCE: image files, .y4m videos, or folders of either (your own representative frames);
--natural uses the natural images scikit-image ships. --name is the model's input name
(nr_metric_v1: frame, learned_filter_v1: degraded). Then:
    tinyreg quant-gate ID --inputs OUT.npz
Exit 0 written, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv: list[str] | None = None) -> int:
    from registry.errors import Error
    from registry.media.inputsets import build_frame_set, frames_from, natural_frames, write_input_set

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("sources", nargs="*", type=Path)
    p.add_argument("--natural", action="store_true", help="scikit-image's natural images")
    p.add_argument("--name", default="frame", help="the model's input name (default: frame)")
    p.add_argument("-n", "--samples", type=int, default=64)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--distorted", type=float, default=0.75, help="fraction of samples under a distortion")
    p.add_argument("--every", type=int, default=1, help="take every k-th frame of a video")
    args = p.parse_args(argv)
    try:
        if bool(args.sources) == args.natural:
            print("build_frame_inputs: give SOURCE files/folders or --natural", file=sys.stderr)
            return 2
        src = list(natural_frames()) if args.natural else list(frames_from(args.sources, every=max(1, args.every)))
        frames, _ = build_frame_set(src, args.samples, size=args.size, seed=args.seed, distorted=args.distorted)
        write_input_set(args.out, {args.name: frames})
    except Error as exc:
        print(f"build_frame_inputs: {exc.diagnostics()}", file=sys.stderr)
        return exc.exit_code
    print(f"{args.out}: '{args.name}' {list(frames.shape)} float32 luma from {len(src)} source frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
