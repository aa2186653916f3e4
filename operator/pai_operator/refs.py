"""Ownership references as a registry's mark carries them: `<namespace>/<name>`, or its digest
spelling where the mark cannot hold it whole. No imports from the operator: registry clients
(which know nothing of Kubernetes) spell marks with it too.
"""

from __future__ import annotations

import hashlib
from typing import Final

_DIGEST_PREFIX_CHARS: Final = 64
_DIGEST_MARK: Final = "~sha256:"
_DIGEST_HEX: Final = 40


def digest_ref(ref: str) -> str:
    """The compact spelling of an ownership reference, for marks that cannot hold it whole (PAI
    labels: 128 bytes; a reference can be 317): its first 64 characters, `~sha256:`, and 40 hex
    digits (160 bits) of the SHA-256 of the whole reference, 112 bytes in all (namespace and
    object names are ASCII). The readable prefix is for people; the digest decides."""
    digest = hashlib.sha256(ref.encode("utf-8")).hexdigest()[:_DIGEST_HEX]
    return f"{ref[:_DIGEST_PREFIX_CHARS]}{_DIGEST_MARK}{digest}"


def ref_matches(mark_ref: str | None, ref: str) -> bool:
    """Whether a mark's reference names `ref`: verbatim, or in its digest spelling."""
    return mark_ref is not None and (mark_ref == ref or mark_ref == digest_ref(ref))
