"""Bad-input catalogue (issue 28), the server part: a limit exceeded, a bad limit setting, cancelling another
user's queued training. Each asserts the exact user-facing message (the workbench shows ``field: message``)."""

from __future__ import annotations

import pytest

from core.errors import InputError
from core.limits import ServerLimits
from epi_dash.scheduler import Scheduler


@pytest.mark.parametrize("limits, request_, message", [
    (ServerLimits(max_batch_size=2000), dict(batch_size=5000, iterations=10),
     "batch_size: 5000 exceeds this server's limit of 2000 (max_batch_size)"),
    (ServerLimits(max_iterations=10_000), dict(batch_size=500, iterations=20_000),
     "iterations: 20000 exceeds this server's limit of 10000 (max_iterations)"),
    (ServerLimits(max_parameters=20), dict(batch_size=500, iterations=10, parameters=21),
     "parameters: 21 exceeds this server's limit of 20 (max_parameters)"),
])
def test_a_limit_exceeded(limits, request_, message):
    with pytest.raises(InputError) as err:
        Scheduler(limits).check("alice", **request_)
    assert str(err.value) == message


def test_too_many_runs_of_one_user(monkeypatch):
    monkeypatch.delenv("EPI_DASH_ADMINS", raising=False)
    sched = Scheduler(ServerLimits(max_concurrent=1, max_runs_per_user=2))
    sched.submit("a1", "alice", lambda: None)  # running
    sched.submit("a2", "alice", lambda: None)  # queued
    sched.check("bob", batch_size=500, iterations=10)  # another user is not counted against
    with pytest.raises(InputError) as err:
        sched.check("alice", batch_size=500, iterations=10)
    assert str(err.value) == ("runs: you have 2 trainings queued or running; this server's limit is 2 per user "
                              "(max_runs_per_user): wait for one to end or stop one")
    with pytest.raises(InputError) as err:
        sched.cancel("a2", "bob")
    assert str(err.value) == "job: a2 belongs to alice, not to bob"
    assert [(j["job"], j["state"], j["position"]) for j in sched.jobs()] == [("a1", "running", None),
                                                                            ("a2", "queued", 1)]
    sched.cancel("a2", "alice")
    sched.check("alice", batch_size=500, iterations=10)


@pytest.mark.parametrize("value, message", [
    ("lots", "EPI_DASH_MAX_BATCH_SIZE: 'lots' is not a number"),
    ("0", "EPI_DASH_MAX_BATCH_SIZE: '0' must be positive (leave it unset for no limit)"),
])
def test_a_bad_limit_setting(value, message):
    with pytest.raises(InputError) as err:
        ServerLimits.from_env({"EPI_DASH_MAX_BATCH_SIZE": value})
    assert str(err.value) == message
