"""Bad-input catalogue (issue 28), the run-file part: run names that would escape the runs directory,
disk full while saving, a torn last line in events.jsonl. Each asserts the exact user-facing message."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from core.errors import InputError
from core.jobs import EVENTS_FILE, read_events
from core.runs import atomic_write, reserve_run_dir, validate_run_name


@pytest.mark.parametrize("name, message", [
    ("../x", "'../x' is not a plain name: a run name cannot contain '/' or be '.' or '..'"),
    ("a/../../b", "'a/../../b' is not a plain name: a run name cannot contain '/' or be '.' or '..'"),
    ("/etc/passwd", "'/etc/passwd' is not a plain name: a run name cannot contain '/' or be '.' or '..'"),
    ("..", "'..' is not a plain name: a run name cannot contain '/' or be '.' or '..'"),
    ("", "a run name is required"),
    ("a\x00b", "a run name cannot contain control characters (NUL, newline, ...)"),
])
def test_run_name_cannot_escape_runs_dir(tmp_path: Path, name: str, message: str) -> None:
    runs = tmp_path / "runs"
    with pytest.raises(InputError) as info:
        reserve_run_dir(runs, name)
    assert info.value.field == "run_name"
    assert message in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if not runs.exists() else ["runs"])
    assert not runs.exists() or list(runs.iterdir()) == []


def test_plain_run_name_accepted(tmp_path: Path) -> None:
    assert validate_run_name("lds-20261205-120000") == "lds-20261205-120000"
    assert reserve_run_dir(tmp_path, "lds-1").name == "lds-1"
    assert reserve_run_dir(tmp_path, "lds-1").name == "lds-1-2"


def test_disk_full_while_saving_keeps_previous_file(tmp_path: Path) -> None:
    f = tmp_path / "run.json"
    atomic_write(f, lambda p: p.write_text('{"state": "running"}'))

    def full(p: Path) -> None:
        p.write_text('{"sta')
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        atomic_write(f, full)
    assert info.value.errno == errno.ENOSPC
    assert json.loads(f.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temp file left behind


def test_torn_event_line_is_harmless(tmp_path: Path) -> None:
    good = json.dumps({"kind": "message", "data": {"text": "a"}, "time": 1.0})
    (tmp_path / EVENTS_FILE).write_text(good + "\n" + '{"kind": "mess' + "\n" + good + "\n" + '{"kin')
    events, offset = read_events(tmp_path)
    assert [e.kind for e in events] == ["message", "message"]
    assert offset == len((good + "\n" + '{"kind": "mess' + "\n" + good + "\n").encode())


@pytest.mark.parametrize("content, reason", [
    ('{"state": "runn', "run.json in {path} is not valid JSON"),
    ("[1, 2]", "run.json in {path} is not a JSON object"),
    (b"\xff\xfe garbage", "run.json in {path} is not valid JSON: 'utf-8' codec can't decode"),
])
def test_damaged_run_listed_not_fatal(tmp_path: Path, content, reason: str) -> None:
    from core.runs import damaged_runs, list_runs
    from epi_dash.library import runs_table
    from epi_dash.panels.library import JobLibrary, jobs_table

    good = reserve_run_dir(tmp_path, "good")
    atomic_write(good / "run.json", lambda p: p.write_text(json.dumps({"state": "finished", "kind": "epi"})))
    bad = reserve_run_dir(tmp_path, "bad")
    (bad / "run.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    assert [r.path.name for r in list_runs(tmp_path)] == ["good"]
    [(path, why)] = damaged_runs(tmp_path)
    assert path == bad and reason.format(path=bad) in why
    for table in (jobs_table(tmp_path), runs_table(tmp_path)):
        states = dict(zip(table["run"], table["state"]))
        assert states["good"] == "finished"
        assert states["bad"].startswith("damaged: ") and reason.format(path=bad) in states["bad"]
    opened = []
    lib = JobLibrary(tmp_path, on_open=lambda p, k: opened.append(p))
    lib.table.selection = [list(lib.table.value["run"]).index("bad")]
    lib.open_selected()
    assert opened == [] and lib.message.object.startswith("⚠️ **bad** cannot be opened: it is damaged: ")


def test_corrupt_checkpoint_on_resume(tmp_path: Path) -> None:
    from core.jobs import CHECKPOINT_FILE, JobContext

    ctx = JobContext(tmp_path, {}, resumed=True)
    ctx.save_checkpoint({"step": 3})
    assert ctx.load_checkpoint() == {"step": 3}
    f = tmp_path / CHECKPOINT_FILE
    f.write_bytes(f.read_bytes()[:20])  # truncated
    with pytest.raises(InputError) as info:
        ctx.load_checkpoint()
    assert info.value.field == "checkpoint"
    assert info.value.message.startswith(f"{CHECKPOINT_FILE} in {tmp_path} is damaged (truncated or not a "
                                         "checkpoint) and cannot be resumed; start a new run (")


def test_missing_checkpoint_on_resume_says_so(tmp_path: Path) -> None:
    from core.jobs import JobContext

    events = []
    ctx = JobContext(tmp_path, {}, resumed=True, emit=events.append)
    assert ctx.load_checkpoint() is None
    assert [(e.level, e.message) for e in events if e.kind == "message"] == [
        ("warning", f"no checkpoint.pt in {tmp_path.name} (it stopped before its first checkpoint): "
                    "starting from the beginning")]
