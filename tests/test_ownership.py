"""Per-user runs (issue 28, sign-in): run.json records its owner wherever the run is written, the library
tables list a user's own runs only (admins and the local user of a server without sign-in: every run, with
an owner column), and acting on another user's run is refused on the server naming ``run``."""

from __future__ import annotations

import json
import os
import socket

import pytest

from core import load_model, settings_for
from core.epi_job import epi_settings, train_epi
from core.errors import InputError
from core.jobs import STOP_FILE, run_job
from core.property import EmergentProperty
from core.runs import RunWriter, default_owner, discard_run_dir, load_run, recorded_owner, reserve_run_dir
from epi_dash.library import RunLibrary, runs_table, stop_run
from epi_dash.panels.library import JobLibrary, jobs_table
from epi_dash.serve import check_auth, check_credentials, check_oauth, configure_users
from epi_dash.users import ADMINS_ENV, SIGN_IN_ENV, require_control


def noop_job(ctx):
    return {"owner_seen": ctx.owner}


def make_run(runs, name, owner=None, state="finished", **meta):
    """A minimal run directory (what the library lists) owned by ``owner`` (None: an older run)."""
    path = runs / name
    path.mkdir(parents=True)
    record = {"kind": "epi", "model": "lds", "state": state, **meta, **({"owner": owner} if owner else {})}
    if state == "running":  # a live process on this host: run_state keeps it "running"
        record["process"] = {"host": socket.gethostname(), "pid": os.getpid()}
    (path / "run.json").write_text(json.dumps(record))
    return path


@pytest.fixture
def signed_in(monkeypatch):
    """A server with sign-in and the admin "root"."""
    monkeypatch.setenv(SIGN_IN_ENV, "1")
    monkeypatch.setenv(ADMINS_ENV, "root")


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "alice-run", "alice")
    make_run(root, "bob-run", "bob", state="running")
    make_run(root, "old-run")  # before owners were recorded
    (root / "broken").mkdir()
    (root / "broken" / "run.json").write_text("{half")
    return root


# ------------------------------------------------------------------------------ owner recorded
def test_a_reserved_run_records_its_owner_at_once_and_the_job_keeps_it(tmp_path):
    run_dir = reserve_run_dir(tmp_path, "r", owner="alice")
    assert json.loads((run_dir / "run.json").read_text())["owner"] == "alice"
    assert load_run(run_dir).state == "queued" and load_run(run_dir).owner == "alice"
    result = run_job(noop_job, {}, run_dir, kind="noop")  # no owner passed: e.g. on a Dask worker
    assert result.result == {"owner_seen": "alice"} and load_run(run_dir).owner == "alice"
    assert load_run(run_dir).meta["kind"] == "noop"


def test_run_job_records_the_given_owner_else_the_os_user_and_a_resume_keeps_the_first(tmp_path, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "shelluser")
    assert default_owner() == "shelluser"
    run_job(noop_job, {}, tmp_path / "cli", kind="noop")
    assert load_run(tmp_path / "cli").owner == "shelluser"  # a CLI run: the OS login name
    run_job(noop_job, {}, tmp_path / "mine", kind="noop", owner="alice")
    assert load_run(tmp_path / "mine").owner == "alice"
    run_job(noop_job, {}, tmp_path / "mine", kind="noop", owner="root", resume=True)  # an admin resumes it
    assert load_run(tmp_path / "mine").owner == "alice"


def test_a_run_inside_another_inherits_its_owner_and_runwriter_keeps_a_recorded_owner(tmp_path, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "shelluser")
    run_job(noop_job, {}, tmp_path / "sweep", kind="sweep", owner="alice")
    run_job(noop_job, {}, tmp_path / "sweep" / "cell-1", kind="noop")  # a sweep's cell
    assert recorded_owner(tmp_path / "sweep" / "cell-1") == "alice"
    assert load_run(tmp_path / "sweep" / "cell-1").owner == "alice"
    RunWriter(tmp_path / "sweep").write_meta({"state": "running"})  # EPITrainer's writer replaces run.json
    assert load_run(tmp_path / "sweep").owner == "alice"
    RunWriter(tmp_path / "fresh").write_meta({"state": "running"})
    assert load_run(tmp_path / "fresh").owner == "shelluser"


def test_an_epi_training_records_its_owner_in_run_json(tmp_path):
    model = load_model("lds")
    flow, opt = settings_for(model, batch_size=20, iters_per_epoch=2, num_epochs=1, num_test_batches=10,
                             init_iters=2, num_units=8, device="cpu", seed=1, health="off")
    settings = epi_settings("lds", model, EmergentProperty.default_for(model), flow, opt)
    result = run_job(train_epi, settings, tmp_path / "epi", kind="epi", owner="alice")
    assert result.state in ("finished", "converged"), result.error
    run = load_run(tmp_path / "epi")
    assert run.owner == "alice" and run.meta["iterations"] == 2  # the trainer's own run.json kept it


def test_discard_removes_a_reserved_dir_that_never_started_but_never_a_run(tmp_path):
    reserved = reserve_run_dir(tmp_path, "r", owner="alice")
    discard_run_dir(reserved)
    assert not reserved.exists()
    started = reserve_run_dir(tmp_path, "s", owner="alice")
    (started / "trace.csv").write_text("iteration\n")
    discard_run_dir(started)
    assert (started / "run.json").is_file()


# ------------------------------------------------------------------------------ who sees what
def test_a_signed_in_user_lists_only_their_own_runs(runs, signed_in):
    assert runs_table(runs, "alice")["run"].tolist() == ["alice-run"]
    assert runs_table(runs, "bob")["run"].tolist() == ["bob-run"]
    assert jobs_table(runs, user="alice")["run"].tolist() == ["alice-run"]
    assert runs_table(runs, "local").empty  # nobody signed in on a sign-in server: no one's admin


def test_admins_and_the_local_user_without_sign_in_list_every_run_with_its_owner(runs, signed_in, monkeypatch):
    table = runs_table(runs, "root")
    assert sorted(table["run"]) == ["alice-run", "bob-run", "broken", "old-run"]
    assert dict(zip(table["run"], table["owner"]))["bob-run"] == "bob"
    assert RunLibrary(runs, on_open=print, user="root").table.hidden_columns == ["path"]
    assert "owner" in RunLibrary(runs, on_open=print, user="alice").table.hidden_columns
    monkeypatch.delenv(SIGN_IN_ENV)
    assert sorted(runs_table(runs, "local")["run"]) == ["alice-run", "bob-run", "broken", "old-run"]
    assert len(jobs_table(runs, user="local")) == 4


# ------------------------------------------------------------------------------ refusals
def test_another_users_or_an_ownerless_run_is_refused_naming_run(runs, signed_in):
    with pytest.raises(InputError) as exc:
        require_control(runs / "bob-run", "alice")
    assert (exc.value.field, exc.value.message) == ("run", "bob-run belongs to another user")
    with pytest.raises(InputError, match="no recorded owner.*only an admin") as exc:
        require_control(runs / "old-run", "alice")
    assert exc.value.field == "run"
    require_control(runs / "alice-run", "alice")
    require_control(runs / "bob-run", "root")
    require_control(runs / "old-run", "root")


def test_stop_run_asks_only_for_ones_own_running_run(runs, signed_in):
    with pytest.raises(InputError, match="bob-run belongs to another user"):
        stop_run(runs / "bob-run", "alice")
    assert not (runs / "bob-run" / STOP_FILE).exists()
    with pytest.raises(InputError, match="alice-run is not running"):
        stop_run(runs / "alice-run", "alice")
    assert stop_run(runs / "bob-run", "bob") == "bob-run"
    assert (runs / "bob-run" / STOP_FILE).exists()


def test_library_open_and_job_library_open_refuse_a_row_of_another_user(runs, signed_in):
    opened = []
    lib = RunLibrary(runs, on_open=opened.append, user="alice")
    lib.table.value = runs_table(runs, "root")  # a stale or forged table: the check is on the server
    lib.table.selection = [lib.table.value["run"].tolist().index("bob-run")]
    lib._open()
    assert opened == [] and "run: bob-run belongs to another user" in lib.message.object
    lib.table.selection = [lib.table.value["run"].tolist().index("alice-run")]
    lib._open()
    assert opened == [str(runs / "alice-run")]
    jobs = JobLibrary(runs, on_open=lambda p, k: opened.append(p))
    jobs.user = "alice"
    jobs.table.value = jobs_table(runs, user="root")
    jobs.table.selection = [jobs.table.value["run"].tolist().index("bob-run")]
    jobs.open_selected()
    assert len(opened) == 1 and "run: bob-run belongs to another user" in jobs.message.object


# ------------------------------------------------------------------------------ serve flags
def test_serve_checks_credentials_and_counts_oauth_as_sign_in(tmp_path):
    with pytest.raises(InputError, match="no such credentials file") as exc:
        check_credentials(str(tmp_path / "credentials.json"))
    assert exc.value.field == "basic_auth"
    creds = tmp_path / "c.json"
    creds.write_text(json.dumps({"alice": "pw1", "local": "x"}))
    with pytest.raises(InputError, match="'local' is reserved"):
        check_credentials(str(creds))
    creds.write_text(json.dumps(["alice"]))
    with pytest.raises(InputError, match="JSON object of user names to passwords"):
        check_credentials(str(creds))
    creds.write_text(json.dumps({"alice": "pw1", "bob": "pw2"}))
    check_credentials(str(creds))
    check_credentials("one-shared-password")
    check_auth("0.0.0.0", None, False, oauth_provider="github")
    with pytest.raises(InputError, match="--oauth-provider"):
        check_auth("0.0.0.0", None, False)
    check_oauth("github", "client-id", "client-secret")
    with pytest.raises(InputError, match="unknown provider 'githb'; one of .*github") as exc:
        check_oauth("githb", "client-id", "client-secret")
    assert exc.value.field == "oauth_provider"
    with pytest.raises(InputError, match="needs --oauth-key and --oauth-secret"):
        check_oauth("github", "client-id", None)


def test_serve_admins_flag_names_the_admins(monkeypatch):
    from epi_dash.cli import build_parser
    from epi_dash.users import is_admin

    monkeypatch.setenv(ADMINS_ENV, "")  # restored after the test (configure_users writes os.environ)
    monkeypatch.setenv(SIGN_IN_ENV, "")
    args = build_parser().parse_args(["serve", "--admins", "alice, bob", "--oauth-provider", "github",
                                      "--oauth-key", "id", "--oauth-secret", "s"])
    assert (args.admins, args.oauth_provider, args.oauth_key, args.oauth_secret) == ("alice, bob", "github", "id", "s")
    configure_users(args.admins, signed_in=True)
    assert os.environ[ADMINS_ENV] == "alice,bob" and is_admin("bob") and not is_admin("carol")
    assert not is_admin("local")  # with sign-in, "local" is nobody's admin


def test_a_signed_in_users_workbench_training_is_hers_and_another_user_cannot_resume_it(tmp_path, signed_in,
                                                                                         monkeypatch):
    import panel as pn

    from epi_dash.workbench import ensure_extensions

    from .test_dashboard_workbench import _pump, _workbench

    ensure_extensions()
    monkeypatch.setattr(type(pn.state), "user", property(lambda self: "alice"))
    wb = _workbench(tmp_path)
    wb.start()
    _pump(wb)
    run_dir = wb.runner.run_dir
    assert load_run(run_dir).owner == "alice" and load_run(run_dir).state in ("finished", "converged")
    assert wb.library.table.value["run"].tolist() == [run_dir.name]
    monkeypatch.setattr(type(pn.state), "user", property(lambda self: "bob"))
    notices = []
    wb.notify = lambda level, text: notices.append((level, text))
    wb.resume()  # bob's session pointed at alice's run
    assert notices == [("error", f"run: {run_dir.name} belongs to another user")] and not wb.runner.running


def test_an_example_opened_by_a_signed_in_user_is_hers_to_resume_and_another_user_gets_his_own_copy(
        tmp_path, signed_in, monkeypatch):
    import panel as pn

    from core.examples import list_examples
    from epi_dash.users import may_control
    from epi_dash.workbench import ensure_extensions

    from .test_dashboard_workbench import _pump, _workbench

    name = next(ex.name for ex in list_examples() if ex.shipped and ex.meta.get("model") == "lds")
    ensure_extensions()
    monkeypatch.setattr(type(pn.state), "user", property(lambda self: "alice"))
    wb = _workbench(tmp_path)
    notices = []
    wb.notify = lambda level, text: notices.append((level, text))
    assert "Opened example" in wb.open_example(name)
    copy = tmp_path / "runs" / name
    assert json.loads((copy / "run.json").read_text())["owner"] == "alice" and may_control("alice", "alice")
    assert wb.open_example(name) and not (tmp_path / "runs" / f"{name}-2").exists()  # her copy, reused
    require_control(copy)  # alice's session: no refusal
    _pump(wb)  # opening analyses the run (modes) in the background first
    wb.resume()
    assert not [n for n in notices if n[0] == "error"] and wb.live.state.status == "starting"
    wb.runner.stop()
    _pump(wb)
    monkeypatch.setattr(type(pn.state), "user", property(lambda self: "bob"))
    assert "Opened example" in wb.open_example(name)  # bob's own copy, not alice's
    assert load_run(tmp_path / "runs" / f"{name}-2").owner == "bob" and load_run(copy).owner == "alice"
