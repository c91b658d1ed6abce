# SPDX-License-Identifier: MIT
"""Load test of the workshop hub with simulated learners (issue 18).

    python -m benchmarks.hub --learners 20 [--json] [--rounds 3] [--no-browser]

Starts a real hub (`pvlab.hub.launcher`: JupyterHub + configurable-http-proxy) in a
temporary state folder, then every learner at once, each in its own thread:
  1. signs in through the login form (claiming a name) and gets a token from the REST API;
  2. asks for their server; start-up = request until the hub reports it ready;
  3. opens a kernel through the proxy and runs the code cells of their own copy of
     notebooks/06-scenario-lab.ipynb (timed as `notebook`);
  4. performs the lab actions (toggle bitness, pin, toggle the assist, allocate, undo) in a
     fresh `Lab`, `--rounds` times, each timed from execute_request to the kernel idle.
One more learner does the same through Debian's Chromium (Playwright): signs in on the
form, opens the notebook in JupyterLab and runs all cells (skipped without Chromium).

Reports learners served, failures, start-up per learner, action latency (median, p95),
memory per learner (PSS of their server and kernel processes) and the hub's and proxy's own
memory. Timings depend on the machine and what else runs on it: say so next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvlab.hub import launcher
from pvlab.hub.learner import LAB_ACTIONS, LAB_SETUP, Learner, LearnerError
from pvlab.hub.settings import HubSettings

NOTEBOOK = "notebooks/06-scenario-lab.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
GOALS = {"action_median_ms": 250.0, "action_p95_ms": 1000.0, "memory_per_learner_mb": 250.0}


@dataclass
class LearnerRun:
    name: str
    startup_s: float = 0.0
    notebook_s: float = 0.0
    actions: list[tuple[str, float]] = field(default_factory=list)
    error: str = ""
    via: str = "kernel API"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def notebook_code(person: Learner) -> list[str]:
    reply = person.get_file(NOTEBOOK)
    if reply.status_code != 200:
        raise LearnerError(f"{person.name}: cannot read {NOTEBOOK} ({reply.status_code})")
    cells = reply.json()["content"]["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells if c["cell_type"] == "code"]


def run_learner(hub_url: str, workshop_password: str, name: str, rounds: int,
                barrier: threading.Barrier) -> LearnerRun:
    run = LearnerRun(name)
    person = Learner(hub_url, name, secrets.token_hex(8))
    try:
        person.login(workshop_password)
    except Exception as err:
        run.error = f"{type(err).__name__}: {err}"
    try:
        barrier.wait(timeout=600)  # everyone asks for a server at the same moment
    except threading.BrokenBarrierError:
        pass
    if run.error:
        return run
    try:
        started = time.monotonic()
        person.request_server()
        run.startup_s = person.wait_ready(started, timeout=600)
        person.start_kernel()
        t0 = time.monotonic()
        for code in notebook_code(person):
            result = person.execute(code, timeout=300)
            if result.status != "ok":
                raise LearnerError(f"{name}: notebook cell failed: {result.error}")
        run.notebook_s = time.monotonic() - t0
        for _ in range(rounds):
            if person.execute(LAB_SETUP).status != "ok":
                raise LearnerError(f"{name}: lab setup failed")
            for action, code, expected in LAB_ACTIONS:
                result = person.execute(code)
                if result.status != "ok" or expected not in result.stdout:
                    raise LearnerError(f"{name}: {action}: {result.stdout!r} {result.error}")
                run.actions.append((action, result.seconds))
    except Exception as err:  # a failure is a figure of the load test, not a crash
        run.error = f"{type(err).__name__}: {err}"
    finally:
        person.close_kernel_socket()
    return run


def run_browser_learner(hub_url: str, workshop_password: str) -> LearnerRun:
    run = LearnerRun("browser", via="chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        run.error = "skipped: Playwright is not installed"
        return run
    if not CHROMIUM.exists():
        run.error = f"skipped: {CHROMIUM} is missing"
        return run
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                         headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.set_default_timeout(600_000)  # a loaded machine: minutes, not seconds
            page.set_default_navigation_timeout(600_000)
            page.goto(f"{hub_url}/hub/login")
            page.fill("#username_input", "browser")
            page.fill("#password_input", secrets.token_hex(8))
            page.fill("#otp_input", workshop_password)
            started = time.monotonic()
            page.click("#login_submit", no_wait_after=True)
            page.wait_for_url("**/user/browser/lab**", timeout=600_000)
            page.locator(".jp-Launcher, .jp-DirListing").first.wait_for(timeout=300_000)
            run.startup_s = time.monotonic() - started
            t0 = time.monotonic()
            page.goto(f"{hub_url}/user/browser/lab/tree/{NOTEBOOK}?reset")
            idle = page.locator(".jp-StatusBar-TextItem", has_text="(ipykernel) | Idle").first
            idle.wait_for(timeout=300_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.get_by_text("Run All Cells", exact=True).first.click()
            page.wait_for_function(
                """() => {
                    const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                    return p.length > 0 && p.every(x => /\\[\\d+\\]/.test(x.textContent));
                }""", timeout=600_000)
            idle.wait_for(timeout=300_000)
            run.notebook_s = time.monotonic() - t0
            if page.locator("text=Error displaying widget").count():
                run.error = "the notebook shows 'Error displaying widget'"
            if page.locator(".jp-OutputArea-output[data-mime-type*='error']").count():
                run.error = "a cell raised an error in the browser"
            browser.close()
    except Exception as err:
        run.error = f"{type(err).__name__}: {err}"
    return run


def memory(hub: launcher.RunningHub) -> dict[str, Any]:
    """PSS and CPU seconds per learner (their server and its kernels, the whole run so
    far), and the hub's and proxy's RSS."""
    try:
        import psutil
    except ImportError:
        return {"error": "psutil is not installed"}
    root = psutil.Process(hub.proc.pid)
    per_learner: dict[str, float] = {}
    cpu_per_learner: dict[str, float] = {}
    proxy_mb = 0.0
    for proc in root.children(recursive=False):
        try:
            cmd = " ".join(proc.cmdline())
            if "configurable-http-proxy" in cmd:
                proxy_mb += proc.memory_info().rss / 2**20
                continue
            if "jupyterhub.singleuser" not in cmd:
                continue
            user = proc.environ().get("JUPYTERHUB_USER", f"pid{proc.pid}")
            total, cpu = 0.0, 0.0
            for member in [proc, *proc.children(recursive=True)]:
                total += member.memory_full_info().pss / 2**20
                times = member.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
            per_learner[user] = round(total, 1)
            cpu_per_learner[user] = round(cpu, 1)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    values = list(per_learner.values())
    return {
        "per_learner_mb": per_learner,
        "median_mb": round(statistics.median(values), 1) if values else None,
        "max_mb": round(max(values), 1) if values else None,
        "cpu_s_per_learner_median": round(statistics.median(cpu_per_learner.values()), 1)
        if cpu_per_learner else None,
        "hub_mb": round(root.memory_info().rss / 2**20, 1),
        "proxy_mb": round(proxy_mb, 1),
    }


def summarise(runs: list[LearnerRun], browser: LearnerRun | None, mem: dict[str, Any],
              learners: int, hub_start_s: float, wall_s: float) -> dict[str, Any]:
    served = [r for r in runs if not r.error]
    latencies = [s * 1000 for r in served for _, s in r.actions]
    per_action: dict[str, list[float]] = {}
    for r in served:
        for action, s in r.actions:
            per_action.setdefault(action, []).append(s * 1000)
    startups = [r.startup_s for r in served]
    result: dict[str, Any] = {
        "learners": learners,
        "served": len(served),
        "failures": [{"learner": r.name, "error": r.error} for r in runs if r.error],
        "hub_start_s": round(hub_start_s, 1),
        "startup_s": {"median": round(statistics.median(startups), 1) if startups else None,
                      "p95": round(percentile(startups, 95), 1) if startups else None,
                      "max": round(max(startups), 1) if startups else None,
                      "per_learner": {r.name: round(r.startup_s, 1) for r in served}},
        "notebook_s": {"median": round(statistics.median([r.notebook_s for r in served]), 1)
                       if served else None},
        "action_latency_ms": {
            "count": len(latencies),
            "median": round(statistics.median(latencies), 1) if latencies else None,
            "p95": round(percentile(latencies, 95), 1) if latencies else None,
            "per_action": {a: {"median": round(statistics.median(v), 1),
                               "p95": round(percentile(v, 95), 1)}
                           for a, v in per_action.items()},
        },
        "memory": mem,
        "browser": None if browser is None else {
            "ok": not browser.error, "error": browser.error,
            "startup_s": round(browser.startup_s, 1),
            "notebook_s": round(browser.notebook_s, 1)},
        "wall_s": round(wall_s, 1),
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
    }
    lat = result["action_latency_ms"]
    result["goals"] = {
        "all_served": len(served) == learners,
        "action_median_ms": {"goal": GOALS["action_median_ms"], "value": lat["median"],
                             "met": lat["median"] is not None
                             and lat["median"] <= GOALS["action_median_ms"]},
        "action_p95_ms": {"goal": GOALS["action_p95_ms"], "value": lat["p95"],
                          "met": lat["p95"] is not None and lat["p95"] <= GOALS["action_p95_ms"]},
        "memory_per_learner_mb": {
            "goal": GOALS["memory_per_learner_mb"], "value": mem.get("max_mb"),
            "met": mem.get("max_mb") is not None
            and mem["max_mb"] <= GOALS["memory_per_learner_mb"]},
    }
    return result


def run_load(learners: int, rounds: int, browser: bool, state_dir: Path,
             mem_limit_mb: int = 2048) -> dict[str, Any]:
    password = secrets.token_urlsafe(12)
    port = launcher.free_port()
    launcher.prepare(state_dir, HubSettings(port=port, mem_limit_mb=mem_limit_mb,
                                            max_learners=learners + 1))
    t0 = time.monotonic()
    hub = launcher.start(state_dir, password, timeout=300)
    hub_start_s = time.monotonic() - t0
    try:
        names = [f"learner{i:02d}" for i in range(learners)]
        barrier = threading.Barrier(learners)
        wall0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=learners + 1) as pool:
            futures = [pool.submit(run_learner, hub.url, password, n, rounds, barrier)
                       for n in names]
            browser_future = pool.submit(run_browser_learner, hub.url, password) \
                if browser else None
            runs = [f.result() for f in futures]
            browser_run = browser_future.result() if browser_future else None
        wall_s = time.monotonic() - wall0
        mem = memory(hub)
    finally:
        hub.stop(timeout=120)
    return summarise(runs, browser_run, mem, learners, hub_start_s, wall_s)


def format_table(result: dict[str, Any]) -> str:
    lat, mem, start = result["action_latency_ms"], result["memory"], result["startup_s"]
    lines = [
        f"learners served      {result['served']} / {result['learners']}"
        f"  (failures: {len(result['failures'])})",
        f"hub start            {result['hub_start_s']} s",
        f"server start-up      median {start['median']} s, p95 {start['p95']} s, "
        f"max {start['max']} s",
        f"notebook 06 (kernel) median {result['notebook_s']['median']} s",
        f"lab action latency   median {lat['median']} ms, p95 {lat['p95']} ms "
        f"({lat['count']} actions)",
    ]
    for action, fig in lat["per_action"].items():
        lines.append(f"  {action:<18} median {fig['median']} ms, p95 {fig['p95']} ms")
    lines += [
        f"memory per learner   median {mem.get('median_mb')} MB, max {mem.get('max_mb')} MB "
        "(PSS: server + kernel)",
        f"hub / proxy memory   {mem.get('hub_mb')} MB / {mem.get('proxy_mb')} MB (RSS)",
        f"CPU per learner      {mem.get('cpu_s_per_learner_median')} s (server + kernel, "
        "whole run, median)",
    ]
    if result["browser"]:
        b = result["browser"]
        lines.append(f"browser learner      {'ok' if b['ok'] else 'FAILED: ' + b['error']}, "
                     f"start-up {b['startup_s']} s, notebook {b['notebook_s']} s")
    lines.append(f"machine              {result['machine']['cpus']} CPUs, load average "
                 f"{', '.join(f'{x:.1f}' for x in result['machine']['load_average'])}")
    for failure in result["failures"]:
        lines.append(f"FAILED {failure['learner']}: {failure['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hub", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3,
                        help="times each learner performs the action sequence (default 3)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium learner")
    parser.add_argument("--mem-limit-mb", type=int, default=HubSettings().mem_limit_mb)
    parser.add_argument("--state-dir", default=None,
                        help="keep the hub's state here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    problems = launcher.missing_tools(HubSettings())
    if problems:
        print("cannot run the hub load test: " + "; ".join(problems), file=sys.stderr)
        return 2
    tmp = None if args.state_dir else tempfile.mkdtemp(prefix="pvlab-hub-bench-")
    state = Path(args.state_dir or tmp or ".")
    try:
        result = run_load(args.learners, args.rounds, not args.no_browser, state,
                          args.mem_limit_mb)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0 if result["served"] == result["learners"] else 1


if __name__ == "__main__":
    sys.exit(main())
