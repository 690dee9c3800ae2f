"""Push and pull of the real-size DISTS entry over loopback, against ``skopeo copy`` and ``curl`` of the same bytes.

``python -m bench oci`` (written to bench-results/oci.json). The entry is the real-size DISTS
graph (random VGG-16 weights, the real alpha/beta: speed does not depend on weight values),
signed with a throwaway key. A Debian ``docker-registry`` serves it on 127.0.0.1 from a
temporary folder. Each measurement runs in its own process (peak RSS is that process's own
``VmHWM``). Figures:

* tinyreg push (fresh registry) and pull (empty cache, then warm cache) in MiB/s of entry bytes, the
  call itself (the imports it needs are timed apart: ``imports_s``);
* ``skopeo copy`` of the same artifact registry -> ``dir:`` (pull) and ``dir:`` -> registry (push);
* the streaming path alone (GET, hash as it arrives, write into the cache) for the largest blob, in
  process, against ``curl`` GET of the same blob (the plain loopback rate for one stream);
* peak RSS of each tinyreg process.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_registry(workdir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    exe = shutil.which("docker-registry")
    if exe is None:
        raise RuntimeError("docker-registry is missing (Debian package docker-registry; make bench installs it)")
    port = _free_port()
    storage = workdir / f"storage-{port}"
    storage.mkdir()
    cfg = workdir / f"registry-{port}.yml"
    cfg.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
                   f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([exe, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/v2/")
            if c.getresponse().status == 200:
                return proc, f"127.0.0.1:{port}", storage
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("docker-registry did not start")


def make_signed_registry(workdir: Path) -> tuple[Path, Path]:
    """(registry.json holding the real-size DISTS fp32 entry, signed; the consumer trust policy)."""
    import torch
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from registry.export.core import WeightSource, export_entry
    from registry.families.dists.reference import installed_alpha_beta
    from registry.families.vgg import VGG16_WIDTHS, random_vgg
    from registry.signing.policy import write_policy
    from registry.signing.sign import sign_entries
    from registry.store.document import init_registry

    ab = installed_alpha_beta()
    if ab is None:
        raise RuntimeError("dists-pytorch is not installed (make install brings it)")
    vgg = workdir / "vgg16_random.pth"
    torch.save({k: torch.from_numpy(v) for k, v in random_vgg(VGG16_WIDTHS, 7).items()}, vgg)
    reg = init_registry(workdir / "maintainer")
    export_entry(reg, "dists", weights=[WeightSource("vgg16", str(vgg), hashlib.sha256(vgg.read_bytes()).hexdigest()),
                                        WeightSource("alpha_beta", str(ab))])
    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = workdir / "k.pem", workdir / "k.pub.pem"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    policy = workdir / "trust.json"
    write_policy(policy, keys=[pub])
    sign_entries(reg, None, key=priv)
    return reg, policy


_CHILD = """
import json, sys, time
from bench._worker import peak_rss_mib
from registry.distribution import pull, push
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
if args["op"] in ("push", "pull"):  # what the call imports lazily, timed apart (interpreter start is not counted)
    import registry.signing.sign, registry.signing.verify, registry.signing.statement, registry.store.schema, registry.store.card
    import registry.signing.methods, registry.signing._methods.model_signing_v1, jsonschema
    import registry.distribution.puller, registry.distribution.pusher
    if args["op"] == "push":
        import onnx  # push verifies the entry: it derives the file list from the graph
imports = time.perf_counter() - t0
t = time.perf_counter()
if args["op"] == "push":
    push("dists_vgg16", args["ref"], registry=args["reg"], trust=args["trust"], plain_http=True)
elif args["op"] == "fetch":  # the streaming path alone: GET, hash as it arrives, write to the cache
    from pathlib import Path
    from registry.distribution.cache import BlobCache
    from registry.distribution.oci import Transport
    t = time.perf_counter()
    BlobCache(Path(args["cache"])).fetch(Transport(args["host"], plain_http=True), "tiny/dists", args["digest"], args["size"])
else:
    pull(args["ref"], registry=args["dest"], trust=args["trust"], plain_http=True, cache_dir=args["cache"])
print(json.dumps({"s": time.perf_counter() - t, "imports_s": imports, "peak_rss_mib": peak_rss_mib()}))
"""


def _child(env: dict[str, str], **args: Any) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], capture_output=True, text=True, cwd=REPO,
                         env=env, check=True, timeout=900)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    return time.perf_counter() - t


def bench_oci(workdir: Path) -> dict[str, Any]:
    import os

    workdir.mkdir(parents=True, exist_ok=True)
    reg, policy = make_signed_registry(workdir)
    entry = json.loads(reg.read_text())["models"][0]
    files = [f for f in entry["files"] if f["role"] != "signature"]
    total = sum(int(f["size"]) for f in files)
    mib = total / 2**20
    env = {**os.environ, "PYTHONPATH": str(REPO), "TINYREG_STATE_DIR": str(workdir / "state")}
    res: dict[str, Any] = {"entry_bytes": total, "files": {f["path"]: f["size"] for f in files}, "reps": REPS}
    pushes, pulls, warm = [], [], []
    rss: dict[str, float] = {}
    for i in range(REPS):
        proc, host, storage = _start_registry(workdir)
        try:
            ref = f"oci://{host}/tiny/dists:dists_vgg16"
            r = _child(env, op="push", ref=ref, reg=str(reg), trust=str(policy))
            pushes.append(r["s"])
            res.setdefault("push_imports_s", []).append(r["imports_s"])
            rss["push"] = max(rss.get("push", 0), r["peak_rss_mib"])
            cache = workdir / f"cache-{i}"
            r = _child(env, op="pull", ref=ref, dest=str(workdir / f"dest-{i}"), trust=str(policy), cache=str(cache))
            pulls.append(r["s"])
            res.setdefault("pull_imports_s", []).append(r["imports_s"])
            rss["pull"] = max(rss.get("pull", 0), r["peak_rss_mib"])
            r = _child(env, op="pull", ref=ref, dest=str(workdir / f"dest-warm-{i}"), trust=str(policy), cache=str(cache))
            warm.append(r["s"])
            skopeo = shutil.which("skopeo")
            if skopeo:
                d = workdir / f"skopeo-{i}"
                res.setdefault("skopeo_pull_s", []).append(_timed([skopeo, "copy", "--quiet", "--src-tls-verify=false",
                                                                   f"docker://{host}/tiny/dists:dists_vgg16", f"dir:{d}"]))
                proc2, host2, storage2 = _start_registry(workdir)  # a fresh registry: every blob is sent, as for tinyreg
                try:
                    res.setdefault("skopeo_push_s", []).append(_timed([skopeo, "copy", "--quiet", "--dest-tls-verify=false",
                                                                       f"dir:{d}", f"docker://{host2}/tiny/copy:c"]))
                finally:
                    proc2.terminate()
                    proc2.wait(10)
                    shutil.rmtree(storage2, ignore_errors=True)
            big = max(files, key=lambda f: int(f["size"]))
            r = _child(env, op="fetch", host=host, digest=f"sha256:{big['sha256']}", size=int(big["size"]),
                       cache=str(workdir / f"fetch-{i}"))
            res.setdefault("stream_mib_s", []).append(int(big["size"]) / 2**20 / r["s"])
            curl = shutil.which("curl")
            if curl:
                url = f"http://{host}/v2/tiny/dists/blobs/sha256:{big['sha256']}"
                t = _timed([curl, "-sS", "-o", str(workdir / f"curl-{i}"), url])
                res.setdefault("curl_mib_s", []).append(int(big["size"]) / 2**20 / t)
        finally:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(storage, ignore_errors=True)
    res["push_s"] = statistics.median(pushes)
    res["pull_s"] = statistics.median(pulls)
    res["pull_warm_cache_s"] = statistics.median(warm)
    res["push_mib_s"] = mib / res["push_s"]
    res["pull_mib_s"] = mib / res["pull_s"]
    res["peak_rss_mib"] = rss
    for k in ("skopeo_pull_s", "skopeo_push_s"):
        if k in res:
            res[k] = statistics.median(res[k])
    if "skopeo_pull_s" in res:
        res["skopeo_pull_mib_s"] = mib / res["skopeo_pull_s"]
        res["skopeo_push_mib_s"] = mib / res["skopeo_push_s"]
        res["pull_vs_skopeo"] = res["skopeo_pull_s"] / res["pull_s"]
        res["push_vs_skopeo"] = res["skopeo_push_s"] / res["push_s"]
    for k in ("curl_mib_s", "stream_mib_s", "push_imports_s", "pull_imports_s"):
        if k in res:
            res[k] = statistics.median(res[k])
    return res


def print_oci(res: dict[str, Any]) -> None:
    mib = res["entry_bytes"] / 2**20
    print(f"real-size DISTS entry: {mib:.1f} MiB in {len(res['files'])} files; medians of {res['reps']} runs")
    rss = res["peak_rss_mib"]
    print(f"tinyreg push        {res['push_s']:.2f} s  {res['push_mib_s']:.0f} MiB/s  peak RSS {rss.get('push', 0):.0f} MiB")
    print(f"tinyreg pull        {res['pull_s']:.2f} s  {res['pull_mib_s']:.0f} MiB/s  peak RSS {rss.get('pull', 0):.0f} MiB")
    print(f"tinyreg pull, warm  {res['pull_warm_cache_s']:.2f} s")
    print(f"(plus imports per process, not counted above: push {res['push_imports_s']:.2f} s with onnx, "
          f"pull {res['pull_imports_s']:.2f} s)")
    if "skopeo_pull_s" in res:
        print(f"skopeo copy pull    {res['skopeo_pull_s']:.2f} s  {res['skopeo_pull_mib_s']:.0f} MiB/s  "
              f"(tinyreg at {res['pull_vs_skopeo']:.2f}x its speed)")
        print(f"skopeo copy push    {res['skopeo_push_s']:.2f} s  {res['skopeo_push_mib_s']:.0f} MiB/s  "
              f"(tinyreg at {res['push_vs_skopeo']:.2f}x its speed)")
    print(f"tinyreg blob stream {res['stream_mib_s']:.0f} MiB/s (GET + sha256 + write of the largest blob, in process)")
    if "curl_mib_s" in res:
        print(f"curl GET one blob   {res['curl_mib_s']:.0f} MiB/s")


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        res = bench_oci(Path(d))
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "oci.json").write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    print_oci(res)
    print(f"\nwrote {out / 'oci.json'}")
