"""Stable hashes: the same value gives the same hex digest in every process, on every machine, in every version."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(obj: Any) -> str:
    """16 hex digits of the SHA-256 of `obj` as canonical JSON (sorted keys; values JSON cannot hold as text)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
