"""How deep a body nests, counted before it is parsed (api/http.py): the same count the parsed
value has, brackets inside strings left out, and a scan that stays linear on bodies built to
make a backtracking pattern go quadratic."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.http import _depth

# Strings heavy in what the scan must see past: quotes, backslashes and brackets.
TRICKY = st.text(alphabet=st.sampled_from(['"', "\\", "[", "]", "{", "}", "a", "\n", "é"]), max_size=12)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=30,
)


def nesting(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((nesting(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(item) for item in value.values()), default=0)
    return 0


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(value=VALUES, ascii_only=st.booleans())
def test_the_count_is_the_parsed_value_s_nesting(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert _depth(raw) == nesting(value)


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b'"\\' * 32_768, 0),  # 64 KB: every quote an open string; was 12 s of CPU
        (b'\\"' * 32_768, 0),  # was 17 s
        (b'"' + b"[" * 1000, 0),  # an open string holds its brackets
        (b'["\\' + b"\n[" * 1000, 1),  # an escape's newline is still inside the string
        (b'[["]"]]', 2),
    ],
)
def test_strings_left_open_hold_what_follows(raw: bytes, depth: int) -> None:
    assert _depth(raw) == depth
