"""The workbench's "Server queue" card (issue 28): the process scheduler's jobs, an admin sees every user's
with names, another user only their own and a count of the others'; a queued job of one's own is cancelled
from it, another user's is refused naming ``job``; the card is built only when first opened."""

from __future__ import annotations

import pytest
from bokeh.document import Document

from core.errors import InputError
from core.limits import ServerLimits
from epi_dash.queue_view import CANCEL, QueueState, QueueView, run_name
from epi_dash.scheduler import Scheduler
from epi_dash.users import ADMINS_ENV, SIGN_IN_ENV


@pytest.fixture(autouse=True)
def signed_in(monkeypatch):
    """A server with sign-in and the admin "root"."""
    monkeypatch.setenv(SIGN_IN_ENV, "1")
    monkeypatch.setenv(ADMINS_ENV, "root")


@pytest.fixture
def sched():
    """One slot: alice's training runs; alice's sweep, bob's training and bob's app job wait."""
    s = Scheduler(ServerLimits(max_concurrent=1))
    started, cancelled = [], []
    for job, owner in (("1:lds-alice", "alice"), ("job1:sweep-alice", "alice"), ("2:lds-bob", "bob"),
                       ("job2:dataset-bob", "bob")):
        s.submit(job, owner, start=lambda job=job: started.append(job), on_cancel=cancelled.append)
    s.started, s.cancelled = started, cancelled
    return s


def _opened(sched, user):
    notices = []
    view = QueueView(QueueState(sched, user=user), notify=lambda level, text: notices.append((level, text)))
    view.card.collapsed = False  # what opening the card does
    return view, notices


def test_an_admin_sees_every_users_jobs_with_names(sched):
    view, _ = _opened(sched, "root")
    frame = view.table.value
    assert frame["run"].tolist() == ["lds-alice", "lds-bob", "sweep-alice", "dataset-bob"]  # users in turn
    assert frame["owner"].tolist() == ["alice", "bob", "alice", "bob"]
    assert frame["state"].tolist() == ["running", "queued", "queued", "queued"]
    assert frame["position"].tolist() == ["", "1", "2", "3"]
    assert frame["action"].tolist() == ["", CANCEL, CANCEL, CANCEL]  # an admin may cancel any waiting job
    assert "every user's" in view.summary.object and "Other users" not in view.summary.object


def test_a_user_sees_only_their_own_jobs_and_a_count_of_the_others(sched):
    view, _ = _opened(sched, "alice")
    frame = view.table.value
    assert frame["run"].tolist() == ["lds-alice", "sweep-alice"] and set(frame["owner"]) == {"alice"}
    assert frame["action"].tolist() == ["", CANCEL] and frame["position"].tolist() == ["", "2"]
    assert view.state.hidden == 2 and "Other users: 2 jobs" in view.summary.object
    assert "bob" not in view.summary.object and "bob" not in frame.to_string()


def test_a_user_cancels_their_own_queued_job_and_is_refused_anothers_naming_job(sched):
    view, notices = _opened(sched, "alice")
    view.cancel("job1:sweep-alice")
    assert notices[-1] == ("info", "Cancelled sweep-alice (it was waiting).")
    assert sched.cancelled == ["alice"]  # the job's own session was told who cancelled it
    assert "job1:sweep-alice" not in [r["job"] for r in sched.jobs()]
    assert view.table.value["run"].tolist() == ["lds-alice"]
    view.cancel("2:lds-bob")
    assert notices[-1] == ("error", "job: lds-bob belongs to another user")
    assert "2:lds-bob" in [r["job"] for r in sched.jobs()]
    view.cancel("1:lds-alice")  # running: stopped on its page, not cancelled here
    assert notices[-1][0] == "error" and notices[-1][1].startswith("job: lds-alice is running")
    with pytest.raises(InputError) as info:
        view.state.cancel("9:gone")
    assert info.value.field == "job" and "not in the queue" in info.value.message


def test_the_cancel_cell_cancels_and_a_refresh_shows_whats_new(sched):
    view, notices = _opened(sched, "root")
    view._on_click(type("Click", (), {"column": "action", "row": 1})())  # bob's training
    assert notices[-1] == ("info", "Cancelled lds-bob (it was waiting).") and sched.cancelled == ["root"]
    sched.finished("1:lds-alice")  # the running one ends: the next starts
    view.refresh()
    frame = view.table.value
    assert frame["state"].tolist() == ["running", "queued"] and frame["job"][0] == sched.started[-1]
    assert run_name("3:lds-2026") == "lds-2026" and run_name("job7:sweep:x") == "sweep:x"


def test_the_card_is_empty_until_opened():
    view = QueueView(QueueState(Scheduler(ServerLimits()), user="alice"))
    assert view.card.collapsed and view.card.objects == [] and view.table is None
    from panel.models.tabulator import DataTabulator

    root = view.card.get_root(Document())
    assert not list(root.select({"type": DataTabulator})) and len(list(root.references())) < 10
    view.card.collapsed = False
    assert view.table is not None and len(view.table.value) == 0 and "Other users: 0 jobs" in view.summary.object
    assert len(list(root.select({"type": DataTabulator}))) == 1  # in the page once opened
