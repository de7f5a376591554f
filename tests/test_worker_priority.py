"""``serve --scheduler local``: the LocalCluster's workers run trainings at a lower priority than the server."""

from __future__ import annotations

import os
import threading

import pytest

from core.worker_priority import LowerPriority, lower_priority
from epi_dash.cli import build_parser


def _thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _nice_in_a_new_thread() -> int:
    found = []
    thread = threading.Thread(target=lambda: found.append(_thread_nice()))
    thread.start()
    thread.join()
    return found[0]


def test_every_worker_task_and_the_threads_it_starts_run_at_the_plugins_nice_value():
    from distributed import Client, LocalCluster

    ours = _thread_nice()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        assert client.submit(_thread_nice, pure=False).result() == ours  # before: the server's priority
        client.register_plugin(LowerPriority(7))
        tasks = [client.submit(_thread_nice, pure=False, workers=[w]) for w in client.scheduler_info()["workers"]]
        assert [t.result() for t in tasks] == [max(7, ours)] * 2
        assert client.submit(_nice_in_a_new_thread, pure=False).result() == max(7, ours)
    assert _thread_nice() == ours  # the process that made the cluster keeps its priority


def test_lower_priority_never_lowers_a_nice_value():
    expected = max(15, _thread_nice())
    pid = os.fork()  # in a child, so that this test process keeps its priority
    if pid == 0:
        lower_priority(15)
        lower_priority(5)
        os._exit(0 if _thread_nice() == expected else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_serve_refuses_a_nice_value_out_of_range(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--worker-nice", "25"])
    assert "--worker-nice: a nice value is an integer in 0..19; got '25'" in capsys.readouterr().err
    assert build_parser().parse_args(["serve"]).worker_nice == 10
