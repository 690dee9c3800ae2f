"""One or more example command lines per command, shown at the end of its ``--help``.

Every command registered in ``registry.cli`` has a row here (tests/cli/test_cli_reference.py
checks it); the generated CLI reference (docs/cli.md) shows them too.
"""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "init": ("tinyreg init                      # model/tiny/registry.json in the current folder",
             "tinyreg init ~/models/tiny        # anywhere; then export TINYREG_REGISTRY=~/models/tiny"),
    "list": ("tinyreg list", "tinyreg list --registry ~/models/tiny --json"),
    "show": ("tinyreg show ssim_luma", "tinyreg show dists_vgg16 --json"),
    "pin": ("tinyreg pin dists_vgg16", "tinyreg pin --all --check      # exit 1 if any pin is out of date"),
    "check-ops": ("tinyreg check-ops dists_vgg16", "tinyreg check-ops model.onnx --profile int8",
                  "tinyreg check-ops --emit-ort-config fp32 > ort.config"),
    "verify": ("tinyreg verify", "tinyreg verify --trust ~/.config/tinyreg/trust.json --json"),
    "migrate": ("tinyreg migrate --dry-run", "tinyreg migrate --skip-missing"),
    "add": ("tinyreg add ssim                  # weight-free: a real entry", "tinyreg add dists --id dists_smoke"),
    "export": ("tinyreg export ssim", "tinyreg export dists                # downloads the pinned upstream weights",
               "tinyreg export dists --weight vgg16=vgg16.pth#SHA256 --weight alpha_beta=weights.pt"),
    "parity": ("tinyreg parity ssim_luma", "tinyreg parity dists_vgg16 --pairs 20 --size 256 --size 97x131"),
    "score": ("tinyreg score ssim_luma ref.png dist.png",
              "tinyreg score ssim_luma --ref ref.y4m --dist dist.mp4 --format csv",
              "tinyreg score dists_vgg16 --manifest pairs.csv --out results.jsonl --workers 2"),
    "quantize": ("tinyreg quantize dists_vgg16", "tinyreg quantize nr_metric_v1 --inputs frames.npz"),
    "quant-gate": ("tinyreg quant-gate --all", "tinyreg quant-gate dists_vgg16 --seed 3 --record"),
    "trust": ("tinyreg trust --key signing.pub.pem --out ~/.config/tinyreg/trust.json",
              "tinyreg trust --identity https://github.com/ORG/REPO/.github/workflows/release.yml@refs/heads/main "
              "--issuer https://token.actions.githubusercontent.com --out .tinyreg/trust.json"),
    "sign": ("tinyreg sign --all --key signing.pem", "tinyreg sign --all              # keyless, in CI"),
    "verify-bundle": ("tinyreg verify-bundle model/tiny --bundle model/tiny/registry.sigstore.json --key signing.pub.pem",),
    "recover": ("tinyreg recover                  # complete an update this machine's writer left",
                "tinyreg recover --discard        # remove a journal instead"),
    "push": ("tinyreg push dists_vgg16 oci://ghcr.io/acme/tiny-models",
             "tinyreg push dists_vgg16 oci://ghcr.io/acme/tiny-models:dists-v2 --json"),
    "pull": ("tinyreg pull oci://ghcr.io/acme/tiny-models:dists_vgg16 --trust trust.json --registry models/",),
    "hook": ("tinyreg hook verify --trust .tinyreg/trust.json", "tinyreg hook pin-check"),
    "report": ("tinyreg report results.jsonl --out report.html      # a curve per pair, the worst frame marked",
               "tinyreg report --registry model/tiny --trust trust.json --out registry.html"),
}


def epilog(command: str) -> str | None:
    """The ``Examples:`` block for ``command`` (None when it has none: the reference test fails then)."""
    lines = EXAMPLES.get(command)
    if not lines:
        return None
    # "\b" keeps click from re-wrapping the block
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


__all__ = ["EXAMPLES", "epilog"]
