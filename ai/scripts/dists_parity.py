#!/usr/bin/env python3
"""The full DISTS parity run: exported ONNX in onnxruntime vs DISTS_pytorch.DISTS on the same weights.

    dists_parity.py [--vgg16 PATH|URL --vgg16-sha256 HEX] [--alpha-beta PATH|URL] [--pairs 20] [--size 256 ...]

Exports into a temporary registry and runs ``tinyreg parity`` there: natural
images under blur, noise, JPEG, contrast and shift, at each size. Without
--vgg16 the backbone is seeded random (trained VGG-16 weights cannot be
fetched everywhere); alpha/beta default to the installed dists-pytorch file.
Exit 0 pass, 1 fail, 2 error.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vgg16")
    p.add_argument("--vgg16-sha256")
    p.add_argument("--alpha-beta")
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--size", action="append")
    args = p.parse_args(argv)
    try:
        import torch

        from registry.errors import Error
        from registry.export.core import WeightSource, export_entry
        from registry.export.parity import parity_reference, parse_size, run_parity
        from registry.families import get_family
        from registry.families.dists.reference import installed_alpha_beta
        from registry.families.vgg import VGG16_WIDTHS, random_vgg
        from registry.runtime.loader import load
        from registry.store.document import init_registry
    except ImportError as exc:
        print(f"dists_parity: needs the 'export' extra ({exc.name}); run 'make install'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        try:
            vgg, vsha = args.vgg16, args.vgg16_sha256
            if vgg is None:
                vgg = str(Path(d) / "vgg16_random_seed7.pth")
                torch.save({k: torch.from_numpy(v) for k, v in random_vgg(VGG16_WIDTHS, 7).items()}, vgg)
                vsha = hashlib.sha256(Path(vgg).read_bytes()).hexdigest()
                print("backbone: seeded random VGG-16 (pass --vgg16 for trained weights)")
            ab = args.alpha_beta or str(installed_alpha_beta() or "")
            if not ab:
                print("dists_parity: no --alpha-beta and dists-pytorch is not installed", file=sys.stderr)
                return 2
            reg = init_registry(Path(d) / "registry")
            weights = [WeightSource("vgg16", vgg, vsha), WeightSource("alpha_beta", ab)]
            fam = get_family("dists")
            entry = export_entry(reg, "dists", weights=weights, progress=sys.stderr.isatty())
            ref = parity_reference(entry, fam, weights)
            sizes = [parse_size(s) for s in (args.size or ["256", "97x131", "360x480"])]
            res = run_parity(load(str(entry["id"]), reg), entry, fam, ref, pairs=args.pairs, sizes=sizes)
        except Error as exc:
            print(f"dists_parity: {exc.diagnostics()}", file=sys.stderr)
            return exc.exit_code
    print(f"{'PASS' if res.passed else 'FAIL'}: {res.pairs} pairs ({', '.join(res.sizes)}); max |onnx - reference| "
          f"{res.max_abs_diff:.3g} (tolerance {res.tolerance:g}), mean {res.mean_abs_diff:.3g}; identical images: onnx "
          f"{res.identical_max_abs:.3g}, reference {res.reference_identical_max_abs:.3g}; worst {res.worst_pair}")
    return 0 if res.passed else 1


if __name__ == "__main__":
    sys.exit(main())
