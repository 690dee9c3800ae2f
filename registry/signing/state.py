"""What a listing may say of an entry's signature without a trust policy (``tinyreg list``).

The answer is what ``verify`` would find as far as it can be told without verifying: a bundle
that is listed but absent, unreadable, not pinned or changed since it was pinned is never
"signed". Cheap (one fstat and one hash of a small file per entry), no signing library imported.
"""

from __future__ import annotations

from registry._internal.hashing import check_pinned_file
from registry._internal.paths import confine
from registry._internal.safeio import CAPS
from registry.errors import Error, IntegrityError
from registry.store.document import Entry, Registry

SIGNED = "yes"
UNSIGNED = ""


def signature_state(reg: Registry, entry: Entry) -> str:
    """``yes`` (bundle present and matching its pin), ``""`` (not signed), or a short phrase saying what is wrong."""
    rel = entry.get("sigstore_bundle")
    if not rel:
        return UNSIGNED
    if not isinstance(rel, str):
        return "listed, bundle path invalid"
    try:
        path = confine(reg.root, rel, what="sigstore_bundle")
    except Error:
        return "listed, bundle path invalid"
    files = entry.get("files")
    pin = next((f for f in files if isinstance(f, dict) and f.get("path") == rel), None) if isinstance(files, list) else None
    try:
        if pin is None:
            if not reg.is_legacy:
                return "listed, bundle not pinned" if path.exists() or path.is_symlink() else "listed, bundle missing"
            check_pinned_file(path, "0" * 64, cap=CAPS["bundle"])  # only to tell missing from present
        else:
            size = pin.get("size")
            check_pinned_file(path, str(pin.get("sha256")), size if isinstance(size, int) and not isinstance(size, bool) else None,
                              cap=CAPS["bundle"])
    except IntegrityError as exc:
        if "missing" in exc.diagnostics():
            return "listed, bundle missing"
        if pin is None:  # a legacy registry pins no bundle: present is all a listing can say
            return "yes (unpinned, schema_version 1)" if reg.is_legacy else "listed, bundle not pinned"
        return "listed, bundle changed since it was pinned"
    except Error:
        return "listed, bundle unreadable"
    return SIGNED
