# SPDX-License-Identifier: MIT
"""Load test of the workshop hub with simulated learners (issue 18).

    python -m benchmarks.hub --learners 20 [--json] [--rounds 3] [--mode both]
                             [--think 2 8] [--no-browser] [--seed 18]

Starts a real hub (`pvlab.hub.launcher`: JupyterHub + configurable-http-proxy + the render
server) in a temporary state folder, then N learners, each in its own thread, in phases
measured apart (every learner finishes a phase before the next starts):
  1. sign-in: the login form (claiming a name), then a token from the REST API;
  2. start-up storm: all ask for their server at once; start-up = request until ready;
  3. notebook: each opens a kernel through the proxy and runs the code cells of their copy
     of notebooks/06-scenario-lab.ipynb (timed as `notebook`);
  4. actions, paced (`--mode paced` or `both`): each learner performs their own sequence of
     lab actions, thinking between two actions for a time drawn uniformly from `--think`
     seconds (default 2 to 8: after a click the learner reads the new picture, the status
     line and what changed before the next click); the goal is judged here;
  5. actions, unpaced (`--mode unpaced` or `both`): the same, clicking without pause, as a
     stress figure (every learner always waiting for the machine);
  6. (without --no-browser) one more learner through Debian's Chromium (Playwright): signs
     in on the form, opens the notebook in JupyterLab and runs all cells.
A learner's sequence (`--rounds` times): a fresh `Lab` set up as the notebook's story, then
the story's five actions (toggle bitness, pin, toggle the assist, allocate, undo), each
replaced with probability 0.25 by an exploratory action (another pin, an entry written,
the other bitness, another allocation, an undo), and 0-2 exploratory actions added; the
random choices are seeded per learner (`--seed`), so no two learners click the same way.
Each action is timed from execute_request to the kernel going idle.

Reports per phase; action latency (median, p95), the shared render cache's hit rate and
the hub side's CPU per action (every process of the hub: hub, proxy, render server,
learners' servers and kernels, and their `dot` children); memory per learner (PSS of their
server and kernel) and the hub's and proxy's own memory. Timings depend on the machine and
what else runs on it: say so next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvlab.hub import accounts, launcher
from pvlab.hub.learner import LAB_SETUP, Learner, LearnerError
from pvlab.hub.settings import HubSettings

NOTEBOOK = "notebooks/06-scenario-lab.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
GOALS = {"action_median_ms": 250.0, "action_p95_ms": 1000.0, "memory_per_learner_mb": 250.0}
THINK_S = (2.0, 8.0)
MODES = ("paced", "unpaced")
_STATUS = '\nprint(f"[{lab.status_kind}] {lab.status_text}")'
#: The story of notebook 06, as its clicks (the tests check their exact outcomes).
STORY: list[tuple[str, str]] = [
    ("toggle bitness", "lab.set_bitness(32 if lab.bitness == 64 else 64)"),
    ("pin", 'lab.pin("l3", 3)'),
    ("toggle assist", 'lab.set_vm_assist("pae_extended_cr3", '
                      '"pae_extended_cr3" not in lab.session.vm_assists)'),
    ("allocate", "lab.allocate()"),
    ("undo", "lab.undo()"),
]
#: What a learner tries besides the story (any outcome is fine: a refusal is a lesson).
EXPLORE: list[tuple[str, str]] = [
    ("pin", 'lab.pin("l2", 2)'),
    ("write entry", 'lab.set_entry("l3", {index}, "l2", "P")'),
    ("toggle bitness", "lab.set_bitness(32 if lab.bitness == 64 else 64)"),
    ("allocate", 'lab.allocate(above="4GiB" if {index} % 2 else None)'),
    ("undo", "lab.undo()"),
    ("toggle assist", 'lab.set_vm_assist("pae_extended_cr3", '
                      '"pae_extended_cr3" not in lab.session.vm_assists)'),
]


def action_sequence(rng: random.Random) -> list[tuple[str, str]]:
    """One round of a learner's clicks: the story, varied (see the module's docstring)."""
    out: list[tuple[str, str]] = []
    for action in STORY:
        if rng.random() < 0.25:
            name, code = rng.choice(EXPLORE)
            action = (name, code.format(index=rng.randrange(4)))
        out.append(action)
    for _ in range(rng.randrange(3)):
        name, code = rng.choice(EXPLORE)
        out.insert(rng.randrange(len(out) + 1), (name, code.format(index=rng.randrange(4))))
    return out


@dataclass
class LearnerRun:
    name: str
    person: Learner | None = None
    startup_s: float = 0.0
    notebook_s: float = 0.0
    actions: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    cache: dict[str, dict[str, int]] = field(default_factory=dict)
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


def phase_sign_in(run: LearnerRun, hub_url: str, workshop_password: str) -> None:
    run.person = Learner(hub_url, run.name, secrets.token_hex(8))
    run.person.login(workshop_password)


def phase_start(run: LearnerRun, barrier: threading.Barrier) -> None:
    person = _person(run)
    try:
        barrier.wait(timeout=600)  # everyone asks for a server at the same moment
    except threading.BrokenBarrierError:
        pass
    started = time.monotonic()
    person.request_server()
    run.startup_s = person.wait_ready(started, timeout=900)


def phase_notebook(run: LearnerRun) -> None:
    person = _person(run)
    person.start_kernel()
    t0 = time.monotonic()
    for code in notebook_code(person):
        result = person.execute(code, timeout=600)
        if result.status != "ok":
            raise LearnerError(f"{run.name}: notebook cell failed: {result.error}")
    run.notebook_s = time.monotonic() - t0


def phase_actions(run: LearnerRun, mode: str, rounds: int, think: tuple[float, float],
                  seed: int) -> None:
    person = _person(run)
    rng = random.Random(f"{seed}:{run.name}:{mode}")
    timed: list[tuple[str, float]] = []
    reset = person.execute("from pvlab.render import cache as _c; _c.reset_stats()")
    if reset.status != "ok":
        raise LearnerError(f"{run.name}: {reset.error}")
    for _ in range(rounds):
        if mode == "paced":
            time.sleep(rng.uniform(*think))  # reading the notebook before the lab
        setup = person.execute(LAB_SETUP)
        if setup.status != "ok":
            raise LearnerError(f"{run.name}: lab setup failed: {setup.error}")
        for action, code in action_sequence(rng):
            if mode == "paced":
                time.sleep(rng.uniform(*think))
            result = person.execute(code + _STATUS, timeout=600)
            if result.status != "ok" or not result.stdout.startswith("["):
                raise LearnerError(f"{run.name}: {action}: {result.stdout!r} {result.error}")
            timed.append((action, result.seconds))
    got = person.execute("import json; print(json.dumps(_c.stats()))")
    run.cache[mode] = json.loads(got.stdout) if got.status == "ok" else {}
    run.actions[mode] = timed


def _person(run: LearnerRun) -> Learner:
    if run.person is None:
        raise LearnerError(f"{run.name}: not signed in")
    return run.person


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


def hub_cpu_s(hub: launcher.RunningHub) -> float:
    """CPU seconds used so far by the hub and everything it started (proxy, render server,
    learners' servers, kernels and the children they waited for, such as `dot`)."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    total = 0.0
    try:
        root = psutil.Process(hub.proc.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return float("nan")
    for proc in family:
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


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


def _latency(values_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {"count": len(ms),
            "median": round(statistics.median(ms), 1) if ms else None,
            "p95": round(percentile(ms, 95), 1) if ms else None,
            "max": round(max(ms), 1) if ms else None}


def summarise_actions(served: list[LearnerRun], mode: str, phase: dict[str, float]
                      ) -> dict[str, Any]:
    timed = [(a, s) for r in served for a, s in r.actions.get(mode, [])]
    per_action: dict[str, list[float]] = {}
    for action, s in timed:
        per_action.setdefault(action, []).append(s)
    hits = sum(r.cache.get(mode, {}).get("hits", 0) for r in served)
    misses = sum(r.cache.get(mode, {}).get("misses", 0) for r in served)
    count = len(timed)
    return {
        "latency_ms": _latency([s for _, s in timed]),
        "per_action": {a: _latency(v) for a, v in sorted(per_action.items())},
        "render_cache": {"hits": hits, "misses": misses,
                         "hit_rate": round(hits / (hits + misses), 3) if hits + misses else None,
                         "errors": sum(r.cache.get(mode, {}).get("errors", 0) for r in served)},
        "hub_cpu_ms_per_action": round(phase["cpu_s"] * 1000 / count, 1) if count else None,
        "hub_cpu_cores_busy": round(phase["cpu_s"] / phase["wall_s"], 2)
        if phase["wall_s"] else None,
        "wall_s": round(phase["wall_s"], 1),
    }


def summarise(runs: list[LearnerRun], browser: LearnerRun | None, mem: dict[str, Any],
              learners: int, hub_start_s: float, phases: dict[str, dict[str, float]],
              settings: dict[str, Any]) -> dict[str, Any]:
    served = [r for r in runs if not r.error]
    startups = [r.startup_s for r in served]
    result: dict[str, Any] = {
        "learners": learners,
        "served": len(served),
        "failures": [{"learner": r.name, "error": r.error} for r in runs if r.error],
        "settings": settings,
        "hub_start_s": round(hub_start_s, 1),
        "startup_s": {"median": round(statistics.median(startups), 1) if startups else None,
                      "p95": round(percentile(startups, 95), 1) if startups else None,
                      "max": round(max(startups), 1) if startups else None,
                      "hub_cpu_s": round(phases["start"]["cpu_s"], 1),
                      "per_learner": {r.name: round(r.startup_s, 1) for r in served}},
        "notebook_s": {"median": round(statistics.median([r.notebook_s for r in served]), 1)
                       if served else None,
                       "hub_cpu_s": round(phases["notebook"]["cpu_s"], 1)},
        "actions": {mode: summarise_actions(served, mode, phases[mode])
                    for mode in MODES if mode in phases},
        "memory": mem,
        "browser": None if browser is None else {
            "ok": not browser.error, "error": browser.error,
            "startup_s": round(browser.startup_s, 1),
            "notebook_s": round(browser.notebook_s, 1)},
        "phases_wall_s": {k: round(v["wall_s"], 1) for k, v in phases.items()},
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
    }
    judged = "paced" if "paced" in result["actions"] else next(iter(result["actions"]), None)
    lat = result["actions"][judged]["latency_ms"] if judged else {"median": None, "p95": None}
    result["goals"] = {
        "judged_on": judged,
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


def system_accounts() -> set[str]:
    import pwd

    return {e.pw_name for e in pwd.getpwall() if e.pw_name.startswith(accounts.PREFIX)}


def remove_accounts(names: set[str]) -> None:
    """Remove the system accounts (and their groups) this run's hub made (as root)."""
    for name in sorted(names):
        subprocess.run(["userdel", name], capture_output=True, check=False)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_phase(pool: ThreadPoolExecutor, hub: launcher.RunningHub, runs: list[LearnerRun],
              name: str, step: Any) -> dict[str, float]:
    """Run `step(run)` for every learner still in the test, all at once; a learner whose
    step fails is out (its error is a figure). Wall and hub CPU seconds of the phase."""
    cpu0, wall0 = hub_cpu_s(hub), time.monotonic()
    active = [r for r in runs if not r.error]

    def guarded(run: LearnerRun) -> None:
        try:
            step(run)
        except Exception as err:  # a failure is a figure of the load test, not a crash
            run.error = f"{type(err).__name__}: {err}"

    list(pool.map(guarded, active))
    figures = {"wall_s": time.monotonic() - wall0, "cpu_s": hub_cpu_s(hub) - cpu0}
    progress(f"{name}: done in {figures['wall_s']:.1f} s: "
             f"{len([r for r in active if not r.error])} / {len(runs)} learners ok")
    return figures


def run_load(learners: int, rounds: int, browser: bool, state_dir: Path,
             mem_limit_mb: int = 2048, modes: tuple[str, ...] = MODES,
             think: tuple[float, float] = THINK_S, seed: int = 18) -> dict[str, Any]:
    password = secrets.token_urlsafe(12)
    port = launcher.free_port()
    before = system_accounts() if accounts.per_learner_accounts() else set()
    launcher.prepare(state_dir, HubSettings(port=port, mem_limit_mb=mem_limit_mb,
                                            max_learners=learners + 1))
    t0 = time.monotonic()
    hub = launcher.start(state_dir, password, timeout=300)
    hub_start_s = time.monotonic() - t0
    runs = [LearnerRun(f"learner{i:02d}") for i in range(learners)]
    phases: dict[str, dict[str, float]] = {}
    browser_run = None
    mem: dict[str, Any] = {}
    try:
        with ThreadPoolExecutor(max_workers=learners + 1) as pool:
            phases["sign_in"] = run_phase(pool, hub, runs, "sign-in",
                                          lambda r: phase_sign_in(r, hub.url, password))
            barrier = threading.Barrier(max(1, len([r for r in runs if not r.error])))
            phases["start"] = run_phase(pool, hub, runs, "start-up",
                                        lambda r: phase_start(r, barrier))
            phases["notebook"] = run_phase(pool, hub, runs, "notebook", phase_notebook)
            for mode in modes:
                phases[mode] = run_phase(
                    pool, hub, runs, f"actions, {mode}",
                    lambda r, m=mode: phase_actions(r, m, rounds, think, seed))  # type: ignore[misc]
                if mode == modes[0]:
                    mem = memory(hub)  # every learner's kernel holds a lab now
            if browser:
                browser_run = run_browser_learner(hub.url, password)
        for r in runs:
            if r.person is not None:
                r.person.close_kernel_socket()
    finally:
        hub.stop(timeout=120)
        if accounts.per_learner_accounts():
            remove_accounts(system_accounts() - before)
    settings = {"rounds": rounds, "modes": list(modes), "think_s": list(think), "seed": seed,
                "mem_limit_mb": mem_limit_mb}
    return summarise(runs, browser_run, mem, learners, hub_start_s, phases, settings)


def format_table(result: dict[str, Any]) -> str:
    mem, start = result["memory"], result["startup_s"]
    lines = [
        f"learners served      {result['served']} / {result['learners']}"
        f"  (failures: {len(result['failures'])})",
        f"hub start            {result['hub_start_s']} s",
        f"server start-up      median {start['median']} s, p95 {start['p95']} s, "
        f"max {start['max']} s (all at once; hub CPU {start['hub_cpu_s']} s)",
        f"notebook 06 (kernel) median {result['notebook_s']['median']} s "
        f"(hub CPU {result['notebook_s']['hub_cpu_s']} s)",
    ]
    for mode, fig in result["actions"].items():
        lat, rc = fig["latency_ms"], fig["render_cache"]
        how = (f"think {result['settings']['think_s'][0]:g}-{result['settings']['think_s'][1]:g}"
               " s" if mode == "paced" else "no pause")
        lines.append(f"actions, {mode:<8} ({how}): median {lat['median']} ms, p95 {lat['p95']} "
                     f"ms, max {lat['max']} ms ({lat['count']} actions)")
        lines.append(f"  render cache hit rate {rc['hit_rate']} ({rc['hits']} hits, "
                     f"{rc['misses']} misses); hub CPU {fig['hub_cpu_ms_per_action']} ms per "
                     f"action, {fig['hub_cpu_cores_busy']} cores busy over {fig['wall_s']} s")
        for action, a in fig["per_action"].items():
            lines.append(f"    {action:<16} median {a['median']} ms, p95 {a['p95']} ms "
                         f"({a['count']})")
    lines += [
        f"memory per learner   median {mem.get('median_mb')} MB, max {mem.get('max_mb')} MB "
        "(PSS: server + kernel)",
        f"hub / proxy memory   {mem.get('hub_mb')} MB / {mem.get('proxy_mb')} MB (RSS)",
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
    parser.add_argument("--mode", choices=("both", *MODES), default="both",
                        help="paced (think time), unpaced (no pause) or both (default)")
    parser.add_argument("--think", type=float, nargs=2, default=list(THINK_S),
                        metavar=("MIN", "MAX"),
                        help="think time between a paced learner's actions, uniform "
                        "(default 2 8 seconds)")
    parser.add_argument("--seed", type=int, default=18, help="seed of the learners' choices")
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
    if tmp:
        os.chmod(state, 0o711)  # as root, learners' own accounts pass through to their homes
    modes = MODES if args.mode == "both" else (args.mode,)
    try:
        result = run_load(args.learners, args.rounds, not args.no_browser, state,
                          args.mem_limit_mb, modes, tuple(args.think), args.seed)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0 if result["served"] == result["learners"] else 1


if __name__ == "__main__":
    sys.exit(main())
