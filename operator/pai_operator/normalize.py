"""Normalisation of JSON values so that "equal after a round trip through PAI" means equal.

A value the operator sends can come back in a different but equivalent shape: keys reordered,
an integral float as an int (or the reverse: Go decodes JSON numbers as float64), the Options
string re-serialised with other spacing. Comparing raw values would make the operator send the
same update forever, so every comparison in `planning.py` goes through this module.

Public API (tests/unit/test_docs_drift.py keeps this list equal to the code):
    compact_json(value, *, sort_keys=False) -> str   the serialisation PAI's 8192-char limit is measured on
    canonical(value) -> Any                           integral floats -> int, recursively
    json_equal(a, b) -> bool                          equality after `canonical`, with True != 1
    object_equal(spec_value, remote) -> bool          a JSON-object field; an absent remote one equals {}
    options_to_wire(options) -> str                   the Options object as the JSON string PAI stores
    parse_options(text) -> object | None | NOT_JSON   the remote Options string as JSON
    options_equal(spec_value, remote_text) -> bool    the spec's Options against PAI's string
    text_equal(spec_value, remote) -> bool            strings where None and "" mean the same
"""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import Any, Final


class _NotJson(Enum):
    NOT_JSON = "NOT_JSON"


# Sentinel for a remote Options string that is not valid JSON: never equal to any spec value.
NOT_JSON: Final = _NotJson.NOT_JSON


def compact_json(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON as PAI (and the emulator) measure it. Raises ValueError on NaN/Infinity and
    TypeError on values JSON cannot represent."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=sort_keys)


def canonical(value: Any) -> Any:
    """A representative of `value`'s equivalence class: integral finite floats become ints."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else value
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _key(value: Any) -> str:
    # Serialising (rather than ==) keeps true != 1 and false != 0, which Python's == conflates.
    return json.dumps(canonical(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def json_equal(a: Any, b: Any) -> bool:
    return _key(a) == _key(b)


def object_equal(spec_value: dict[str, Any], remote: dict[str, Any] | None) -> bool:
    """A JSON-object field: an absent remote value equals an empty object (PAI may omit `{}`)."""
    return json_equal(spec_value, remote if remote is not None else {})


def options_to_wire(options: dict[str, Any]) -> str:
    """Sorted keys so that the string sent is deterministic for a given spec."""
    return compact_json(options, sort_keys=True)


def parse_options(text: str | None) -> Any:
    """The remote Options string as JSON: None when absent or blank, NOT_JSON when unparseable."""
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return NOT_JSON


def options_equal(spec_value: dict[str, Any], remote_text: str | None) -> bool:
    remote = parse_options(remote_text)
    if remote is NOT_JSON:
        return False
    return json_equal(spec_value, remote if remote is not None else {})


def text_equal(spec_value: str, remote: str | None) -> bool:
    """Free-text fields: PAI may return "" or omit a field that was set to ""."""
    return (spec_value or None) == (remote or None)
