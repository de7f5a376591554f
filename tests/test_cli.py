"""The epi-dash command line, end to end on tiny settings."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import InputError
from epi_dash.cli import main

TINY = ["--set", "iters_per_epoch=25", "--set", "num_epochs=2", "--set", "batch_size=64",
        "--set", "num_test_batches=20", "--set", "init_iters=5", "--set", "health=warn", "--quiet"]  # CLI mechanics; the watch has its own tests


def test_train_info_sample(tmp_path, capsys):
    out = tmp_path / "lds"
    code = main(["train", "lds", "--out", str(out), "--seed", "3", "--mean", "real_lambda1=0.1", *TINY])
    assert code in (0, 3)  # converged or not within the tiny budget, but finished
    meta = json.loads((out / "run.json").read_text())
    assert meta["model"] == "lds" and meta["seed"] == 3 and meta["iterations"] == 50
    assert meta["property"]["mean"][0] == 0.1 and meta["optimizer"]["iters_per_epoch"] == 25
    assert len(meta["history"]) == 2 and meta["parameter_names"] == ["a1", "a2", "a3", "a4"]
    assert (out / "trace.csv").read_text().count("\n") == 51

    assert main(["info", str(out)]) == 0
    assert "epoch   2" in capsys.readouterr().out
    gone = subprocess.Popen(["true"])  # as if the training process had been killed mid-run
    gone.wait()
    meta.update(state="running", process={**meta["process"], "pid": gone.pid})
    (out / "run.json").write_text(json.dumps(meta))
    assert main(["info", str(out)]) == 0
    assert "state       interrupted (its process is gone: `epi-dash resume`" in capsys.readouterr().out

    assert main(["sample", str(out), "-n", "300", "-o", str(tmp_path / "s.csv")]) == 0
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[0] == "a1,a2,a3,a4,log_q" and len(rows) == 301
    assert main(["sample", str(out), "-n", "50", "-o", str(tmp_path / "s.npz")]) == 0
    z = np.load(tmp_path / "s.npz")["z"]
    assert z.shape == (50, 4) and np.all(np.abs(z) <= 10)


def test_seeds_keep_max_entropy_converged(tmp_path):
    out = tmp_path / "osc"
    spec = f"{Path(__file__).parent / 'data' / 'oscillator_model.py'}:DampedOscillator"
    code = main(["train", spec, "--out", str(out), "--seeds", "2", "--std", "decay=2", "--std", "frequency=1",
                 "--mean", "frequency=1", *TINY])
    sel = json.loads((out / "selection.json").read_text())
    assert [r["seed"] for r in sel["runs"]] == [1, 2]
    converged = [r for r in sel["runs"] if r["converged"]]
    if converged:
        assert code == 0
        best = max(converged, key=lambda r: r["entropy"])
        assert sel["chosen"] == best["run_dir"] and (out / "samples.npz").is_file()
    else:
        assert code == 3 and sel["chosen"] is None


def test_bad_input_names_the_field(tmp_path, capsys):
    assert main(["train", "lds", "--out", str(tmp_path / "x"), "--std", "real_lambda1=-1", *TINY]) == 2
    assert "std[real_lambda1]" in capsys.readouterr().err
    assert main(["train", "lds", "--set", "bogus=1", *TINY]) == 2
    assert "set[bogus]" in capsys.readouterr().err
    assert main(["train", "lds", "--mean", "freq=1", *TINY]) == 2
    assert "mean[freq]" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing")]) == 2
    assert "run_dir" in capsys.readouterr().err
    # a value param rejects names the hyperparameter or setting, not just "set"/"settings"
    assert main(["train", "rnn", "--set", "N=1", *TINY]) == 2
    assert "set[N]: " in capsys.readouterr().err
    assert main(["train", "lds", "--set", "lr=abc", *TINY]) == 2
    assert "settings[lr]: " in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_serve_reports_a_bad_or_busy_port_without_a_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "-3"])
    assert exit_info.value.code == 2 and "1..65535" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # in a child process, so a bind that wrongly succeeded could not leave a server running here
        done = subprocess.run([sys.executable, "-m", "epi_dash.cli", "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"error: port: {port} is in use" in done.stderr and "Traceback" not in done.stderr


def test_serve_checks_the_number_of_processes(capsys):
    from epi_dash.serve import serve

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--num-procs", "-2"])
    assert exit_info.value.code == 2 and "--num-procs" in capsys.readouterr().err
    with pytest.raises(InputError, match="threaded"):
        serve(num_procs=2, threaded=True)
    with pytest.raises(InputError) as info:
        serve(num_procs=-1)
    assert info.value.field == "num_procs"


def test_serve_ends_cleanly_on_sigterm(tmp_path):
    """systemd/docker stop send SIGTERM: the server must exit normally (code 0), which is what lets the
    runner's exit hook stop each session's training with a checkpoint (tested in test_dashboard_runner), and
    quietly: nothing on stderr says an exception was ignored."""
    import signal
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = open(tmp_path / "stderr.txt", "w")
    server = subprocess.Popen([sys.executable, "-m", "epi_dash.cli", "serve", "--port", str(port),
                               "--runs-dir", str(tmp_path / "runs")], stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/workbench", timeout=10) as page:
                    assert page.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not come up"
                time.sleep(0.3)
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    finally:
        server.kill()
        err.close()
    stderr = (tmp_path / "stderr.txt").read_text()  # no SystemExit raised into a finalizer or exit callback
    assert "Exception ignored" not in stderr and "Traceback" not in stderr, stderr


def test_sigterm_in_a_serving_process_stops_its_loop_and_raises_nothing():
    """Serving, SIGTERM goes to the server's Ctrl-C handler (Panel's: stop the IOLoop at its next turn); it
    raises nothing into the code the main thread runs then (a finalizer: "Exception ignored"), and a second
    SIGTERM is ignored. Not serving yet (the default Ctrl-C handler), it exits at once with status 0."""
    import signal

    from epi_dash.cli import end_like_ctrl_c

    calls = []
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGINT, lambda signum, _frame: calls.append(signum))
        end_like_ctrl_c(signal.SIGTERM, None)
        assert calls == [signal.SIGINT] and signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with pytest.raises(SystemExit) as exit_info:
            end_like_ctrl_c(signal.SIGTERM, None)
        assert exit_info.value.code == 0
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def test_stop_and_resume_from_cli(tmp_path):
    """A run stopped mid-way (as Ctrl-C does) resumes with `epi-dash resume`."""
    from core import EPITrainer, load_model, settings_for

    model = load_model("lds")
    flow, opt = settings_for(model, iters_per_epoch=25, num_epochs=2, batch_size=64, num_test_batches=20,
                             init_iters=5)
    tr = EPITrainer(model, None, flow, opt, run_dir=tmp_path / "r")
    tr.add_callback(on_iteration=lambda r: tr.request_stop() if r.iteration == 10 else None)
    assert tr.train().state == "stopped"
    assert main(["resume", str(tmp_path / "r"), "--quiet"]) in (0, 3)
    assert json.loads((tmp_path / "r" / "run.json").read_text())["iterations"] == 50


def test_console_script_lists_models():
    exe = shutil.which("epi-dash") or str(Path(__file__).parents[1] / ".venv" / "bin" / "epi-dash")
    out = subprocess.run([exe, "models"], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "lds:" in out and "real_lambda1" in out


def test_progress_bar_says_what_happens_before_the_first_iteration(tmp_path, capsys):
    loud = [a for a in TINY if a != "--quiet"]
    assert main(["train", "lds", "--out", str(tmp_path / "lds"), *loud]) in (0, 3)
    err = capsys.readouterr().err
    assert "initializing q: Gaussian fit, then the baseline test" in err
    assert "50/50" in err and "H " in err  # then the bar counts iterations and shows the entropy


def test_resume_refuses_a_run_that_is_still_training(tmp_path, capsys):
    """`epi-dash resume` on a run whose trainer is alive (this process) would start a second trainer in
    the same directory: refused, naming run_dir, and nothing is written."""
    import json as _json

    from core.runs import process_identity
    from epi_dash.cli import main as cli_main

    run = tmp_path / "live"
    run.mkdir()
    (run / "run.json").write_text(_json.dumps({"state": "running", "process": process_identity()}))
    assert cli_main(["resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"error: run_dir: {run} is still training in another process" in err
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]
