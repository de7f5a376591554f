"""FairQueue order, fairness, per-user cap and cancel; ServerLimits refusals naming the limit."""

import pytest

from core.errors import InputError
from core.limits import ServerLimits
from core.queue import FairQueue


def _q(k=1, per_user=None):
    started = []
    return FairQueue(max_concurrent=k, per_user=per_user), started


def test_round_robin_between_users():
    q, started = _q(1)
    for name, owner in [("a1", "alice"), ("a2", "alice"), ("a3", "alice"), ("b1", "bob")]:
        q.submit(name, owner, lambda n=name: started.append(n))
    assert started == ["a1"]
    assert [j.job_id for j in q.order()] == ["b1", "a2", "a3"]
    assert q.position("a3") == (3, 3)
    q.finished("a1")
    assert started == ["a1", "b1"]  # bob's one job goes before alice's second
    assert q.position("a2") == (1, 2)
    q.finished("b1")
    q.finished("a2")
    assert started == ["a1", "b1", "a2", "a3"]


def test_k_and_per_user_cap():
    q, started = _q(3, per_user=1)
    for name, owner in [("a1", "alice"), ("a2", "alice"), ("b1", "bob")]:
        q.submit(name, owner, lambda n=name: started.append(n))
    assert started == ["a1", "b1"]  # a free slot but alice is at her cap
    assert q.position("a2") == (1, 1)
    q.finished("a1")
    assert started == ["a1", "b1", "a2"]


def test_cancel_only_own():
    q, started = _q(1)
    q.submit("a1", "alice", lambda: started.append("a1"))
    q.submit("a2", "alice", lambda: started.append("a2"))
    with pytest.raises(InputError) as err:
        q.cancel("a2", "bob")
    assert str(err.value) == "job: a2 belongs to alice, not to bob"
    q.cancel("a2", "bob", admin=True)
    assert q.position("a2") is None
    q.finished("a1")
    assert started == ["a1"]


def test_limits_refuse_naming_the_limit():
    limits = ServerLimits(max_batch_size=2000, max_iterations=100)
    limits.check_training(batch_size=2000, iterations=100)
    with pytest.raises(InputError) as err:
        limits.check_training(batch_size=5000, iterations=10)
    assert str(err.value) == "batch_size: 5000 exceeds this server's limit of 2000 (max_batch_size)"
    assert err.value.field == "batch_size"


def test_limits_from_env():
    limits = ServerLimits.from_env({"EPI_DASH_MAX_CONCURRENT": "3", "EPI_DASH_MAX_WALL_TIME_S": "60"})
    assert limits.max_concurrent == 3 and limits.max_wall_time_s == 60.0
    with pytest.raises(InputError) as err:
        ServerLimits.from_env({"EPI_DASH_MAX_BATCH_SIZE": "lots"})
    assert err.value.field == "EPI_DASH_MAX_BATCH_SIZE"


def test_serve_refuses_open_lab_address():
    from epi_dash.serve import check_auth

    with pytest.raises(InputError) as err:
        check_auth("0.0.0.0", None, no_auth=False)
    assert "--no-auth" in str(err.value) and err.value.field == "address"
    check_auth("0.0.0.0", None, no_auth=True)
    check_auth("0.0.0.0", "creds.json", no_auth=False)
    check_auth("127.0.0.1", None, no_auth=False)
