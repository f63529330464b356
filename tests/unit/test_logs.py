"""Log shaping: the last lines, a size bound, secrets out; and the local backend's file reading."""

from __future__ import annotations

from pathlib import Path

from shared.adapters.compute.local_logs import read_end
from shared.domain.logs import MAX_CHARS, REDACTED, scrub, tail_lines


def test_tail_keeps_the_newest_lines_within_the_size_bound():
    text = "\n".join(f"line {n}" for n in range(50))
    assert tail_lines(text, 3) == "line 47\nline 48\nline 49"
    huge = "\n".join("x" * 1000 for _ in range(200))
    assert len(tail_lines(huge, 200)) == MAX_CHARS


def test_scrub_takes_out_each_secret_longest_first_and_leaves_short_values():
    text = "token abcdef-long and abcdef and id 42"
    assert scrub(text, ["abcdef", "abcdef-long", "42"]) == f"token {REDACTED} and {REDACTED} and id 42"


def test_the_local_log_is_read_from_its_end(tmp_path: Path):
    log = tmp_path / "code-server.log"
    log.write_text("".join(f"entry {n}\n" for n in range(100_000)))
    assert tail_lines(read_end(log, 4 * MAX_CHARS), 2) == "entry 99998\nentry 99999"
    assert read_end(tmp_path / "missing.log", 10) == ""
