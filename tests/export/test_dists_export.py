from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from registry.errors import InputError, IntegrityError, MissingWeight, UsageError
from registry.export.core import WeightSource, export_entry
from registry.export.parity import parity_reference, run_parity
from registry.export.smoke import add_smoke
from registry.families.dists import ALPHA_BETA, FAMILY, load
from registry.families.dists.port import DISTS as PortDISTS
from registry.families.dists.reference import reference_model, reference_score
from registry.onnx.inspect import inspect_bytes
from registry.runtime.loader import load as load_session
from registry.store.document import init_registry, read_registry
from registry.verify import verify_registry
from tests.dists_fixtures import alpha_beta_path, reference_inputs, write_random_vgg


@pytest.fixture(scope="module")
def vgg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    p = tmp_path_factory.mktemp("w") / "vgg16_random.pth"
    return p, write_random_vgg(p)


def export(reg: Path, *, vgg16: str, alpha_beta: str, vgg16_sha256: str | None = None, opset: int = 17,
           cache_dir: Path | None = None) -> dict[str, object]:
    return export_entry(reg, "dists", weights=[WeightSource("vgg16", vgg16, vgg16_sha256), WeightSource("alpha_beta", alpha_beta)],
                        opset=opset, cache_dir=cache_dir)


def load_weights(vgg16: str, alpha_beta: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, float]:
    return load({"vgg16": Path(vgg16).read_bytes(), "alpha_beta": Path(alpha_beta).read_bytes()})


def reference_for_entry(entry: dict[str, object], *, vgg16: str | None = None, alpha_beta: str | None = None) -> object:
    given = [WeightSource(k, v) for k, v in (("vgg16", vgg16), ("alpha_beta", alpha_beta)) if v]
    return parity_reference(entry, FAMILY, given)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, vgg: tuple[Path, str]) -> Path:
    reg = init_registry(tmp_path_factory.mktemp("reg"))
    add_smoke(reg, "dists")
    export(reg, vgg16=str(vgg[0]), vgg16_sha256=vgg[1], alpha_beta=str(alpha_beta_path()))
    return reg


def test_alpha_beta_pin_matches_installed_package() -> None:
    assert hashlib.sha256(alpha_beta_path().read_bytes()).hexdigest() == ALPHA_BETA.sha256


@pytest.mark.slow
def test_entry_is_real_pinned_and_verifies(exported: Path) -> None:
    e = read_registry(exported).get("dists_vgg16")
    assert e["smoke"] is False and "placeholder_for" not in e
    assert e["opset"] == 17 and e["license"] == "MIT"
    ups = e["provenance"]["upstream"]
    assert ups[1]["sha256"] == ALPHA_BETA.sha256 and ups[1]["official"] is True
    assert ups[0]["official"] is False and "user-pinned" in ups[0]["name"]
    assert {"torch", "onnx"} <= set(e["provenance"]["tools"])
    assert e["input_conventions"]["normalisation"] == "imagenet"
    r = verify_registry(exported)
    assert r.ok, [str(f) for f in r.findings]
    card = (exported.parent / "dists_vgg16.md").read_text()
    assert "SMOKE" not in card


def test_graph_contract(exported: Path) -> None:
    data = (exported.parent / "dists_vgg16.onnx").read_bytes()
    info = inspect_bytes(data, "x")
    assert info.opset == 17
    assert info.io_json() == FAMILY.contract.io_json()
    assert info.op_set() == set(FAMILY.ops)
    assert b"/tmp" not in data and str(Path.home()).encode() not in data


def test_byte_reproducible_in_other_folder(tmp_path: Path, exported: Path, vgg: tuple[Path, str]) -> None:
    other = init_registry(tmp_path / "elsewhere")
    e = export(other, vgg16=str(vgg[0]), vgg16_sha256=vgg[1], alpha_beta=str(alpha_beta_path()))
    assert e["sha256"] == read_registry(exported).get("dists_vgg16")["sha256"]


def test_requested_opset_or_loud_failure(tmp_path: Path, vgg: tuple[Path, str]) -> None:
    reg = init_registry(tmp_path / "r")
    e = export(reg, vgg16=str(vgg[0]), vgg16_sha256=vgg[1], alpha_beta=str(alpha_beta_path()), opset=18)
    assert e["opset"] == 18
    assert inspect_bytes((reg.parent / e["onnx"]).read_bytes(), "x").opset == 18
    with pytest.raises(UsageError, match="opset 16"):
        export(reg, vgg16=str(vgg[0]), vgg16_sha256=vgg[1], alpha_beta=str(alpha_beta_path()), opset=16)


def test_pin_checked_before_loading(tmp_path: Path, vgg: tuple[Path, str]) -> None:
    reg = init_registry(tmp_path / "r")
    with pytest.raises(IntegrityError, match="does not match the pin"):
        export(reg, vgg16=str(vgg[0]), alpha_beta=str(alpha_beta_path()))  # upstream pin
    assert read_registry(reg).entries == []


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [({"drop": "features.28.weight"}, "lacks features.28.weight"), ({"extra": {"head.w": 1}}, "unexpected key head.w")],
)
def test_strict_keys(tmp_path: Path, kwargs: dict[str, object], msg: str) -> None:
    p = tmp_path / "v.pth"
    write_random_vgg(p, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=msg):
        load_weights(str(p), str(alpha_beta_path()))


def test_never_unpickles(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    import pickle

    p = tmp_path / "evil.pth"
    torch.save({"features.0.weight": Evil()}, p, pickle_module=pickle)
    hashlib.sha256(p.read_bytes()).hexdigest()
    with pytest.raises(InputError, match="weights-only"):
        load_weights(str(p), str(alpha_beta_path()))


def test_port_matches_reference_bitwise(vgg: tuple[Path, str]) -> None:
    state, alpha, beta, _ = load_weights(str(vgg[0]), str(alpha_beta_path()))
    ref = reference_model(state, alpha, beta)
    port = PortDISTS(state, alpha, beta)
    x, y = reference_inputs()
    t = lambda a: torch.from_numpy(a.transpose(2, 0, 1)[None].copy())  # noqa: E731
    assert float(port(t(x), t(y))) == reference_score(ref, x, y)


@pytest.mark.slow  # a parity run of the reference (~20 s)
def test_parity_detects_a_wrong_graph(exported: Path, vgg: tuple[Path, str], tmp_path: Path) -> None:
    """A graph built from other weights must fail the same check (the check can fail)."""
    other = tmp_path / "other.pth"
    sha = write_random_vgg(other, seed=8)
    reg = init_registry(tmp_path / "r")
    export(reg, vgg16=str(other), vgg16_sha256=sha, alpha_beta=str(alpha_beta_path()))
    entry = read_registry(exported).get("dists_vgg16")
    scorer = reference_for_entry(entry, vgg16=str(vgg[0]), alpha_beta=str(alpha_beta_path()))
    res = run_parity(load_session("dists_vgg16", reg), entry, FAMILY, scorer, pairs=3, sizes=[(48, 48)])  # type: ignore[arg-type]
    assert not res.passed and res.max_abs_diff > 1e-5


def test_parity_asks_for_a_local_weight_again(exported: Path) -> None:
    """The entry records a user-pinned local backbone: parity names the weight it needs (no CLI flag in the message)."""
    with pytest.raises(MissingWeight, match="local vgg16 file") as info:
        reference_for_entry(read_registry(exported).get("dists_vgg16"))
    assert info.value.key == "vgg16" and info.value.hint == "weight" and "--" not in str(info.value)


def test_parity_refuses_smoke(reg_path: Path) -> None:
    with pytest.raises(UsageError, match="smoke placeholder"):
        reference_for_entry(read_registry(reg_path).get("dists_vgg16"))


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "srv"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


@pytest.mark.slow
def test_export_by_url_with_cache(tmp_path: Path, server: tuple[str, Path], vgg: tuple[Path, str]) -> None:
    url, root = server
    (root / "vgg.pth").write_bytes(vgg[0].read_bytes())
    (root / "weights.pt").write_bytes(alpha_beta_path().read_bytes())
    reg = init_registry(tmp_path / "r")
    cache = tmp_path / "cache"
    e = export(reg, vgg16=f"{url}/vgg.pth", vgg16_sha256=vgg[1], alpha_beta=f"{url}/weights.pt", cache_dir=cache)
    assert e["provenance"]["upstream"][0]["url"] == f"{url}/vgg.pth"
    assert (cache / vgg[1] / "vgg16-397923af.pth").exists()
    # a tampered download is discarded, never left behind
    (root / "bad.pth").write_bytes(vgg[0].read_bytes()[:-1] + b"\0")
    with pytest.raises(IntegrityError, match="download discarded"):
        export(reg, vgg16=f"{url}/bad.pth", vgg16_sha256="1" * 64, alpha_beta=f"{url}/weights.pt", cache_dir=cache)
    assert not (cache / ("1" * 64)).exists() or not any((cache / ("1" * 64)).iterdir())
    with pytest.raises(InputError, match="cannot download"):
        export(reg, vgg16=f"{url}/missing.pth", vgg16_sha256="2" * 64, alpha_beta=f"{url}/weights.pt", cache_dir=cache)


def test_identical_natural_images_score_zero(exported: Path) -> None:
    from registry.media.images import fr_pairs, imagenet_nchw

    sess = load_session("dists_vgg16", exported)
    conv = read_registry(exported).get("dists_vgg16")["input_conventions"]
    for pair in fr_pairs(6, (40, 56), seed=3):
        x = imagenet_nchw(pair.ref, conv["mean"], conv["std"])
        assert abs(float(sess.run(None, {"ref": x, "dist": x})[0])) <= 1e-6
    assert np.isfinite(float(sess.run(None, {"ref": x, "dist": -x})[0]))
