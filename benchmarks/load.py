"""A workshop's arrival: N people open the workbench within a second while T trainings run.

    .venv/bin/python -m benchmarks.load [--pages 30] [--trainings 3] [--num-procs 1,2] [--scheduler none,local]
                                        [--quick] [--out results.json]

For each ``--num-procs`` value (and each ``--scheduler``: ``none``, trainings in the server's own processes;
``local``, in a Dask LocalCluster's worker processes) an ``epi-dash serve --num-procs P [--scheduler local]
--max-concurrent T`` is started on a free localhost port (runs in a temporary folder; K = T, so every
training runs rather than waits in the queue). Then, in one headless Chromium (``/usr/bin/chromium``; ``--pages-per-context``
pages share a browser context):

1. one page starts an LDS training (50,000-iteration epoch, batch 100): its iterations/s over ``--window``
   seconds is the *solo* speed; ``--trainings`` - 1 more pages start the same training (each reads its
   speed from the page's status line, ``iteration N/M``);
2. ``--pages`` more pages navigate to the workbench at the same moment; each records in the page when
   its status line says "Ready." (ready time, from the common start);
3. one page after the other, a *widget round trip* on every arrived page (``--round-trips`` each): type a
   bad sd, until the server's validation message shows; type it back, until the message goes;
4. the trainings' iterations/s from before the arrival to the end of the round trips, then over another
   ``--window`` with every page open and idle.

Printed: ready time p50/max, round trip p50/p95, the largest RSS of the server processes (all workers
and the supervisor), the CPU seconds the server processes (with ``--scheduler local`` its Dask workers
too) and the browser used while the pages arrived (the machine's other load does not inflate them: the
work per page; on 2 cores, (server + browser) / 2 is a floor for the last page's ready time), errors (pages that were not ready or whose
round trip timed out, page errors, console errors, tracebacks in the server's log: must be 0) and the
trainings' speed: solo, T together before the arrival, while pages arrive and type, with the pages open.
Everything is bounded: ``--timeout`` per page and per round trip, servers and browser killed on exit.
``--quick``: 5 pages, 1 training, short windows. The browsers run on the same machine as the server here
(unlike a workshop's), at ``--browser-nice`` 19 by default so that they take only the CPU the server and
the trainings leave; rendering 30 pages still needs that CPU, so ready times include the browsers' work.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from tests.browser import CHROMIUM, LAUNCH_ARGS, fill, free_port, served

#: the LDS property field the round trip types into, the bad value, and the server's message for it
FIELD, BAD, MESSAGE = "sd (rad/s)", "-1", "standard deviation must be > 0"
#: a training that outlasts any measurement (Stop is never needed: the server is killed)
TRAINING = {"Iters per epoch": "50000", "Num epochs": "1", "Init iters": "10", "Num test batches": "10",
            "Batch size": "100"}
ITERATION = re.compile(r"· iteration (\d+)/")
START = re.compile(r"^\s*Start$")  # the button's label follows an icon
#: in every page: note the wall-clock time (ms) at which a "Ready." status line is first rendered
READY_SCRIPT = """(() => {
  const hasReady = (root) => { for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot && hasReady(el.shadowRoot)) return true;
      if (!el.children.length && el.textContent.includes('Ready.')) return true; } return false; };
  const timer = setInterval(() => { if (window.__readyAt === undefined && document.body && hasReady(document)) {
      window.__readyAt = performance.timeOrigin + performance.now(); clearInterval(timer); } }, 100);
})();"""


@contextlib.contextmanager
def serve_workbench(num_procs: int, runs_dir: Path, log_path: Path, timeout: float = 120, scheduler: str = "none",
                    max_concurrent: int = 1) -> Iterator[tuple[str, int]]:
    """``epi-dash serve --num-procs num_procs`` on a free localhost port; yields (base URL, supervisor pid)."""
    port = free_port()
    cmd = [sys.executable, "-m", "epi_dash.cli", "serve", "--port", str(port), "--num-procs", str(num_procs),
           "--runs-dir", str(runs_dir), "--max-concurrent", str(max(1, max_concurrent))]
    if scheduler != "none":
        cmd += ["--scheduler", scheduler]
    env = {**os.environ, "EPI_DASH_TORCH_THREADS": "1"}
    with open(log_path, "w") as log:
        with served(cmd, "/", port, log, env, timeout, stop_timeout=20) as proc:  # the index: builds no session
            yield f"http://127.0.0.1:{port}", proc.pid


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        with contextlib.suppress(OSError, ValueError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB."""
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, AttributeError):
            total += int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text()).group(1)) / 1024
    return total


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the live process ``pid`` (0 once it is gone)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its descendants: a measure of the server's work that the
    machine's other load does not inflate."""
    return sum(cpu_s(p) for p in process_tree(pid))


def browser_cpu_s(server_pid: int) -> float:
    """CPU seconds used so far by this benchmark's browser (every process below this one but the server's)."""
    return tree_cpu_s(os.getpid()) - tree_cpu_s(server_pid) - cpu_s(os.getpid())


class Browser:
    """One headless Chromium (at ``nice`` priority when > 0); ``page()`` opens a page in a context shared
    by ``per_context`` pages and records its page errors and console errors in ``errors``."""

    def __init__(self, playwright, per_context: int = 10, nice: int = 0, workdir: Path | None = None):
        executable = CHROMIUM
        if nice > 0:  # the browsers stand in for the participants' own machines: they yield the CPU
            executable = str((workdir or Path(tempfile.mkdtemp())) / "chromium-nice")
            Path(executable).write_text(f'#!/bin/sh\nexec nice -n {nice} {CHROMIUM} "$@"\n')
            os.chmod(executable, 0o755)
        self.browser = playwright.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
        self.per_context, self.contexts, self.count = per_context, [], 0
        self.errors: list[str] = []

    def page(self, timeout_ms: float):
        if self.count % self.per_context == 0:
            self.contexts.append(self.browser.new_context(viewport={"width": 1500, "height": 1000}))
            self.contexts[-1].add_init_script(READY_SCRIPT)
        self.count += 1
        page = self.contexts[-1].new_page()
        page.set_default_timeout(timeout_ms)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        return page

    def close(self) -> None:
        self.browser.close()


def iterations(page) -> int:
    """The training's iteration count in ``page``'s status line (0 before the first)."""
    texts = page.get_by_text(ITERATION).all_inner_texts()
    return int(ITERATION.search(texts[0]).group(1)) if texts else 0


def start_training(page, url: str, timeout: float) -> None:
    """Open the workbench in ``page`` and start a long LDS training; returns once it iterates."""
    page.goto(f"{url}/workbench", timeout=timeout * 1000)
    page.get_by_text("Ready.").first.wait_for()
    page.get_by_text("Advanced: flow and optimizer").click()
    for label, value in TRAINING.items():
        fill(page, label, value)
    page.wait_for_timeout(500)
    page.get_by_role("button", name=START).click()
    deadline = time.monotonic() + timeout
    while iterations(page) == 0:
        if time.monotonic() > deadline:
            raise TimeoutError("the training did not start")
        page.wait_for_timeout(250)


def rates(pages, since: tuple[float, list[int]]) -> list[float]:
    """Iterations/s of each training page since ``since`` = (time, counts) (from ``counts(pages)``)."""
    t0, before = since
    now = counts(pages)
    return [(n - b) / (now[0] - t0) for n, b in zip(now[1], before)]


def counts(pages) -> tuple[float, list[int]]:
    return time.monotonic(), [iterations(p) for p in pages]


def arrive(browser: Browser, url: str, n: int, timeout: float) -> tuple[list, list[float | None]]:
    """``n`` pages navigate to the workbench at once; returns (pages, ready seconds or None per page)."""
    pages = [browser.page(timeout * 1000) for _ in range(n)]
    start = time.time()
    for page in pages:  # navigation starts without waiting for the server's answer
        page.evaluate("url => { window.location.href = url; }", f"{url}/workbench")
    ready: list[float | None] = [None] * n
    deadline = time.monotonic() + timeout
    while any(r is None for r in ready) and time.monotonic() < deadline:
        for k, page in enumerate(pages):
            if ready[k] is None:
                with contextlib.suppress(Exception):  # the page is still navigating
                    at = page.evaluate("() => window.__readyAt ?? null")
                    if at is not None:
                        ready[k] = at / 1000 - start
        time.sleep(0.2)
    return pages, ready


def round_trip(page, timeout: float) -> list[float]:
    """Seconds from typing a bad sd to the server's message, and from typing it back to the message gone."""
    box = page.get_by_label(FIELD, exact=True)
    good = box.input_value()
    message = page.get_by_text(MESSAGE).first
    t0 = time.monotonic()
    fill(page, FIELD, BAD)
    message.wait_for(state="visible", timeout=timeout * 1000)
    t1 = time.monotonic()
    fill(page, FIELD, good)
    message.wait_for(state="hidden", timeout=timeout * 1000)
    return [t1 - t0, time.monotonic() - t1]


def server_tracebacks(log: str) -> list[str]:
    """Each traceback in a server log, as its last line (the exception) and the line before it."""
    found = []
    for block in log.split("Traceback (most recent call last):")[1:]:
        lines = [line for line in block.splitlines() if line.strip()]
        tail = next((k for k, line in enumerate(lines) if not line.startswith(" ")), len(lines) - 1)
        found.append("server traceback: " + " | ".join(lines[max(0, tail - 1):tail + 1])[:300])
    return found


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def measure(num_procs: int, pages: int, trainings: int, window: float, repeats: int, timeout: float,
            per_context: int, workdir: Path, scheduler: str = "none", browser_nice: int = 19) -> dict:
    """One server with ``num_procs`` processes: the row of the table (see the module's docstring)."""
    from playwright.sync_api import sync_playwright

    name = f"{num_procs}-{scheduler}"
    log_path = workdir / f"serve-{name}.log"
    errors: list[str] = []
    with serve_workbench(num_procs, workdir / f"runs-{name}", log_path, scheduler=scheduler,
                         max_concurrent=trainings) as (url, pid), sync_playwright() as pw:
        browser = Browser(pw, per_context, browser_nice, workdir)
        rss = [tree_rss_mb(pid)]
        try:
            trainers = []
            solo = None
            for k in range(trainings):
                trainers.append(browser.page(timeout * 1000))
                start_training(trainers[-1], url, timeout)
                if k == 0:
                    since = counts(trainers)
                    time.sleep(window)
                    solo = rates(trainers, since)[0]
            since = counts(trainers)
            time.sleep(window if trainings > 1 else 0)
            together = rates(trainers, since) if trainings > 1 else [solo] * trainings
            since = counts(trainers)
            cpu, browser_cpu = tree_cpu_s(pid), browser_cpu_s(pid)
            arrived, ready = arrive(browser, url, pages, timeout)
            cpu, browser_cpu = tree_cpu_s(pid) - cpu, browser_cpu_s(pid) - browser_cpu
            rss.append(tree_rss_mb(pid))
            errors += [f"page {k} not ready within {timeout:.0f} s" for k, r in enumerate(ready) if r is None]
            trips: list[float] = []
            for _ in range(repeats):
                for k, page in enumerate(arrived):
                    if ready[k] is None:
                        continue
                    try:
                        trips += round_trip(page, timeout)
                    except Exception as exc:  # a timeout is a result: counted, not fatal
                        errors.append(f"round trip on page {k}: {type(exc).__name__}: {str(exc)[:200]}")
            rss.append(tree_rss_mb(pid))
            loaded = rates(trainers, since) if trainers else []
            since = counts(trainers)
            time.sleep(window if trainers else 0)
            idle = rates(trainers, since) if trainers else []  # every page open, nobody typing
            rss.append(tree_rss_mb(pid))
            errors += browser.errors
        finally:
            browser.close()
    errors += server_tracebacks(log_path.read_text(errors="replace"))
    done = [r for r in ready if r is not None]
    return dict(num_procs=num_procs, scheduler=scheduler, pages=pages, trainings=trainings, ready_p50_s=percentile(done, 50),
                ready_max_s=max(done) if done else float("nan"), ready_s=ready, round_trip_p50_s=percentile(trips, 50),
                round_trip_p95_s=percentile(trips, 95), round_trip_s=trips, server_rss_mb=max(rss),
                arrival_cpu_s=cpu, browser_cpu_s=browser_cpu,
                errors=len(errors), error_messages=errors[:20], solo_its=solo,
                together_its=statistics.mean(together) if together else None,
                loaded_its=statistics.mean(loaded) if loaded else None,
                loaded_vs_solo=statistics.mean(loaded) / solo if loaded and solo else None,
                open_its=statistics.mean(idle) if idle else None,
                open_vs_solo=statistics.mean(idle) / solo if idle and solo else None)


def fmt(x, spec: str = ".1f") -> str:
    return "-" if x is None or x != x else format(x, spec)


def table(rows: list[dict]) -> str:
    lines = ["| server processes | trainings run in | pages | trainings | ready p50 / max (s) | round trip p50 / p95 (s) | server RSS (MB) "
             "| CPU s while they arrive: server / browser | errors | it/s per training: solo / T together / pages arriving "
             "and typing / pages open (ratio to solo) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        where = "Dask workers" if r.get("scheduler", "none") != "none" else "server process"
        lines.append(f"| {r['num_procs']} | {where} | {r['pages']} | {r['trainings']} | {fmt(r['ready_p50_s'])} / "
                     f"{fmt(r['ready_max_s'])} | {fmt(r['round_trip_p50_s'], '.2f')} / {fmt(r['round_trip_p95_s'], '.2f')} | "
                     f"{fmt(r['server_rss_mb'], '.0f')} | {fmt(r['arrival_cpu_s'])} / {fmt(r.get('browser_cpu_s'))} | "
                     f"{r['errors']} | {fmt(r['solo_its'], '.0f')} / "
                     f"{fmt(r['together_its'], '.0f')} / {fmt(r['loaded_its'], '.0f')} ({fmt(r['loaded_vs_solo'], '.2f')}) / "
                     f"{fmt(r['open_its'], '.0f')} ({fmt(r['open_vs_solo'], '.2f')}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", type=int, default=30, help="pages that arrive together (default 30)")
    p.add_argument("--trainings", type=int, default=3, help="trainings running meanwhile (default 3)")
    p.add_argument("--num-procs", default="1,2", help="server processes, a comma-separated list (default 1,2)")
    p.add_argument("--scheduler", default="none", help="where trainings run, a comma-separated list: none (the "
                   "server's processes) or local (a Dask LocalCluster; default none)")
    p.add_argument("--window", type=float, default=15.0, help="seconds of the solo speed measurement (default 15)")
    p.add_argument("--round-trips", type=int, default=2, help="widget round trips per arrived page (default 2)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds a page may take to be ready, and a "
                   "round trip (default 300)")
    p.add_argument("--pages-per-context", type=int, default=10)
    p.add_argument("--browser-nice", type=int, default=19, help="the browsers' nice level (default 19: at low "
                   "priority, as if on the participants' own machines; 0: as the server)")
    p.add_argument("--quick", action="store_true", help="5 pages, 1 training, 4 s window, 1 round trip, 120 s timeout")
    p.add_argument("--out", help="write the rows as JSON here")
    args = p.parse_args(argv)
    if args.quick:
        args.pages, args.trainings, args.window, args.round_trips, args.timeout = 5, 1, 4.0, 1, 120.0
    if not 1 <= args.pages <= 200 or not 0 <= args.trainings <= 20:
        p.error("--pages must be 1..200 and --trainings 0..20")
    procs = [int(x) for x in args.num_procs.split(",") if x.strip()]
    schedulers = [x.strip() for x in args.scheduler.split(",") if x.strip()]
    if not set(schedulers) <= {"none", "local"}:
        p.error(f"--scheduler: none or local; got {args.scheduler!r}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="epi-load-") as tmp:
        for where in schedulers:
            for n in procs:
                rows.append(measure(n, args.pages, args.trainings, args.window, args.round_trips, args.timeout,
                                    args.pages_per_context, Path(tmp), scheduler=where,
                                    browser_nice=args.browser_nice))
                for message in rows[-1]["error_messages"]:
                    print(f"  error ({n} processes, scheduler {where}): {message}", file=sys.stderr)
                print(table(rows[-1:]), flush=True)
    print(table(rows), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
