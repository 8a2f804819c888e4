"""Signing pickled pipeline outputs, so only what kiln wrote itself is ever unpickled.

The cache index is a plain JSON-lines file in the project, and the `.kiln` folder may
come from someone else, so neither may decide what gets unpickled. Each pickled output
(and each `kiln.Model` output, whose files may hold a pickle) carries an HMAC-SHA256 of
its format and blob digest (every read checks the blob against that digest), keyed by
a secret kept outside the project: one random key per artifact store, in
`$XDG_CONFIG_HOME/kiln/keys/` (default `~/.config/kiln/keys/`), readable only by its
owner. An entry without a valid signature is a cache miss (the step runs again), and
loading it directly raises `UntrustedCodeError`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

__all__ = ["SIGNED_FORMATS", "key_file", "sign", "signed"]

# Formats that can run code when loaded: they must carry kiln's signature.
SIGNED_FORMATS = frozenset({"pickle", "kiln-model"})
_keys: dict[str, bytes] = {}


def key_file(root: str) -> Path:
    """Where the secret of the artifact store at `root` is kept."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    name = hashlib.sha256(root.encode("utf-8")).hexdigest()[:32]
    return Path(base) / "kiln" / "keys" / f"{name}.key"


def _key(artifacts: Any) -> bytes:
    root = str(artifacts.root)
    key = _keys.get(root)
    if key is not None:
        return key
    path = key_file(root)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another process made
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    _keys[root] = key
    return key


def sign(artifacts: Any, fmt: str, sha: str) -> str:
    """The signature of the output of format `fmt` whose blob has digest `sha`."""
    message = f"kiln-pipeline-output\0{fmt}\0{sha}".encode()
    return hmac.new(_key(artifacts), message, hashlib.sha256).hexdigest()


def signed(artifacts: Any, desc: Any) -> bool:
    """Whether every part of a descriptor that could run code carries a valid signature."""
    if not isinstance(desc, dict):
        return False
    fmt = desc.get("format")
    if fmt in ("tuple", "list", "dict"):
        items = desc.get("items")
        if isinstance(items, dict):
            items = list(items.values())
        return isinstance(items, list) and all(signed(artifacts, v) for v in items)
    if fmt not in SIGNED_FORMATS:
        return True
    mark, sha = desc.get("hmac"), desc.get("sha")
    if not isinstance(mark, str) or not isinstance(sha, str):
        return False
    return hmac.compare_digest(mark, sign(artifacts, fmt, sha))
