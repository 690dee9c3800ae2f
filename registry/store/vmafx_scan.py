"""What the VMAFx fork's libvmaf reads from a registry folder without a JSON parser.

libvmaf finds an entry's Sigstore bundle by scanning ``registry.json`` (at most 1 MiB) for the
string ``"onnx"``, comparing the string after the next ``:`` with the model file's name, and on a
match taking the first ``"sigstore_bundle"`` unless another ``"onnx"`` comes first; a value that
is not a string there ends the whole lookup. It reads sidecar fields as the first occurrence of
each key anywhere in the text. ``verify`` uses these to report, for a folder VMAFx consumes, any
entry libvmaf would resolve to something other than what the document says (the writer makes
that impossible for what tinyreg writes, see ``store/document.py``; a hand edit can break it).
"""

from __future__ import annotations

LOADER_CAP = 1 << 20
SIDECAR_KEYS = ("name", "kind", "input_name", "output_name", "onnx_opset", "quant_mode")


class ScanError(Exception):
    """libvmaf's lookup ends with an error (its errno name)."""


def _value_after_colon(text: bytes, start: int, *, need_string: bool) -> tuple[bytes, int] | None:
    colon = text.find(b":", start)
    if colon < 0:
        return None
    p = colon + 1
    while p < len(text) and text[p] in b" \t\r\n\f\v":
        p += 1
    if text[p : p + 1] != b'"':
        if need_string:
            raise ScanError("EBADMSG")
        return None
    q = text.find(b'"', p + 1)
    if q < 0:
        raise ScanError("EBADMSG")
    return text[p + 1 : q], q


def bundle_for(text: bytes, model_name: str) -> str | None:
    """The ``sigstore_bundle`` libvmaf resolves for ``model_name`` (None: not found); ScanError when the scan fails."""
    if len(text) > LOADER_CAP:
        raise ScanError("EFBIG")
    want = model_name.encode("utf-8")
    cursor = 0
    while (at := text.find(b'"onnx"', cursor)) >= 0:
        got = _value_after_colon(text, at, need_string=True)
        if got is None:
            return None
        value, end = got
        if value == want:
            nxt, key = text.find(b'"onnx"', end), text.find(b'"sigstore_bundle"', end)
            if key < 0 or 0 <= nxt < key:
                return None
            bundle = _value_after_colon(text, key, need_string=True)
            return None if bundle is None else bundle[0].decode("utf-8", "replace")
        cursor = end + 1
    return None


def sidecar_reads(text: bytes) -> dict[str, str | int | None]:
    """Each field as libvmaf reads it: the first occurrence of the key anywhere in the text."""
    out: dict[str, str | int | None] = {}
    for key in SIDECAR_KEYS:
        at = text.find(f'"{key}"'.encode())
        if at < 0:
            out[key] = None
            continue
        if key == "onnx_opset":
            colon = text.find(b":", at + len(key) + 2)
            digits = text[colon + 1 :].lstrip()[:12] if colon >= 0 else b""
            n = len(digits) - len(digits.lstrip(b"+-0123456789"))
            try:
                out[key] = int(digits[:n]) if n else None
            except ValueError:
                out[key] = None
            continue
        try:
            got = _value_after_colon(text, at + len(key) + 2, need_string=False)
        except ScanError:
            got = None
        out[key] = None if got is None else got[0].decode("utf-8", "replace")
    return out
