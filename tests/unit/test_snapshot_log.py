"""The snapshot log: restic's list is the truth, the agent's events add the figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain.snapshots import (
    Reason,
    Snapshot,
    SnapshotEvent,
    SnapshotLog,
    SnapshotReport,
    age_text,
)

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def restic(short_id: str, minutes: int, reason: str | None = "interval") -> dict:
    """One entry as `restic snapshots --json` prints it (restic 0.14: nanoseconds, local offset)."""
    moment = (T0 + timedelta(minutes=minutes)).astimezone().isoformat().replace("+00:00", "Z")
    return {
        "time": moment.replace(".000000", "") if "." in moment else moment,
        "tree": "f" * 64,
        "paths": ["/workspace"],
        "hostname": "dev8",
        "tags": [f"reason:{reason}"] if reason else None,
        "id": short_id + "0" * 56,
        "short_id": short_id,
    }


def report(*entries: dict, event: dict | None = None) -> SnapshotReport:
    return SnapshotReport.model_validate({"event": event, "snapshots": list(entries)})


def test_the_list_is_restics_newest_first_with_the_reported_figures():
    event = {"event": "snapshot", "id": "bbbbbbbb", "reason": "manual", "files": 12, "bytes_added": 3400}
    log = SnapshotLog().merged(
        report(restic("aaaaaaaa", 0), restic("bbbbbbbb", 5, "manual"), event=event), T0
    )
    assert [(s.id, s.reason, s.files, s.bytes_added) for s in log.snapshots] == [
        ("bbbbbbbb", Reason.MANUAL, 12, 3400),
        ("aaaaaaaa", Reason.INTERVAL, None, None),  # its report was lost: no figures, still listed
    ]
    assert log.latest is not None and log.latest.taken_at == T0 + timedelta(minutes=5)


def test_figures_survive_later_reports_and_pruned_snapshots_leave():
    first = {"event": "snapshot", "id": "aaaaaaaa", "reason": "interval", "files": 1, "bytes_added": 10}
    log = SnapshotLog().merged(report(restic("aaaaaaaa", 0), event=first), T0)
    log = log.merged(report(restic("aaaaaaaa", 0), restic("cccccccc", 9)), T0)
    assert log.find("aaaaaaaa") == Snapshot(
        id="aaaaaaaa", taken_at=T0, reason=Reason.INTERVAL, files=1, bytes_added=10
    )
    pruned = log.merged(report(restic("cccccccc", 9), event={"event": "pruned"}), T0 + timedelta(hours=1))
    assert [s.id for s in pruned.snapshots] == ["cccccccc"]
    assert pruned.pruned_at == T0 + timedelta(hours=1)


def test_an_untagged_or_oddly_tagged_snapshot_counts_as_interval():
    log = SnapshotLog().merged(report(restic("aaaaaaaa", 0, None), restic("bbbbbbbb", 1, "bogus")), T0)
    assert {s.reason for s in log.snapshots} == {Reason.INTERVAL}


@pytest.mark.parametrize("outcome", ["unchanged", "failed"])
def test_a_report_of_an_outcome_only_leaves_the_log_as_it_was(outcome):
    """Such a report may come without a list (no repository yet, restic failing): not an empty one."""
    log = SnapshotLog().merged(
        report(restic("aaaaaaaa", 0), event={"event": "snapshot", "id": "aaaaaaaa", "files": 3}), T0
    )
    same = log.merged(report(event={"event": outcome, "reason": "manual"}), T0 + timedelta(hours=1))
    assert same == log and same.snapshots[0].files == 3


def test_the_hand_off_answer_is_added_once():
    event = SnapshotEvent(
        event="snapshot", id="dddddddd", taken_at=T0, reason=Reason.STOP, files=3, bytes_added=9
    )
    log = SnapshotLog().with_event(event)
    assert log.with_event(event) == log and [s.id for s in log.snapshots] == ["dddddddd"]
    assert SnapshotLog().with_event(SnapshotEvent(event="unchanged", reason=Reason.STOP)) == SnapshotLog()


@pytest.mark.parametrize(
    "bad",
    [
        {"snapshots": [{"short_id": "../../etc", "time": "2026-12-02T09:00:00Z"}]},
        {"snapshots": [{"short_id": "aaaaaaaa", "time": "yesterday"}]},
        {"snapshots": [], "event": {"event": "snapshot", "files": -1}},
        {"snapshots": [], "event": {"event": "exploded"}},
        {"snapshots": [], "extra": 1},
        {"snapshots": [restic("aaaaaaaa", 0)] * 121},
    ],
)
def test_a_malformed_report_is_refused(bad):
    with pytest.raises(ValidationError):
        SnapshotReport.model_validate(bad)


def test_age_text():
    assert age_text(None, T0) == "no snapshot was ever taken"
    assert age_text(T0, T0 + timedelta(seconds=40)) == "the last snapshot (2026-12-02T09:00:00Z) is 40 s old"
    assert age_text(T0, T0 + timedelta(minutes=7)).endswith("is 7 min old")
    assert age_text(T0, T0 + timedelta(hours=5)).endswith("is 5 h old")
