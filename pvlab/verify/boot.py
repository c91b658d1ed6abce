# SPDX-License-Identifier: MIT
"""Build the probe kernel for a set of plans and boot it as dom0 of a real Xen under QEMU."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from pvlab.errors import PvlabError
from pvlab.verify.encode import encode_plans
from pvlab.verify.plan import ScenarioPlan
from pvlab.verify.xenbuild import oracle_dir

XEN_ARGS = (
    "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all "
    "dom0_mem=512M,max:640M dom0_max_vcpus=1 bootscrub=0"
)


def build_probe(plans: list[ScenarioPlan], bits: int, workdir: Path) -> Path:
    """Write plan.h for `plans` and compile the `bits`-bit probe; returns the ELF's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "plan.h").write_text(encode_plans(plans))
    if shutil.which("gcc") is None or shutil.which("make") is None:
        raise PvlabError("gcc and make are needed to build the probe kernel",
                         "apt-get install gcc make gcc-multilib")
    result = subprocess.run(
        ["make", "-s", "-C", str(oracle_dir()), f"PLANDIR={workdir}", f"OUT={workdir}",
         f"AGENTS={workdir.parent / 'agents'}", f"probe{bits}"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        hint = "apt-get install gcc-multilib" if bits == 32 else "check the compiler output"
        raise PvlabError(f"building the {bits}-bit probe failed: {result.stderr.strip()[-400:]}",
                         hint)
    return workdir / f"probe{bits}"


def cmdline_words(plan: ScenarioPlan) -> tuple[str, ...]:
    """The options the plan's scenario puts on Xen's command line (`xen_cmdline:`)."""
    import yaml

    from pvlab.xen.cmdline import XenCommandLine

    try:
        data = yaml.safe_load(Path(plan.source).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return ()
    raw = data.get("xen_cmdline") if isinstance(data, dict) else None
    return tuple(XenCommandLine.parse(raw).words()) if isinstance(raw, dict) else ()


def boot_groups(plans: list[ScenarioPlan]) -> list[tuple[int, tuple[str, ...]]]:
    """One boot per (probe bitness, Xen command line): scenarios that set `xen_cmdline`
    get a Xen booted with those options."""
    seen = {(p.boot, cmdline_words(p)) for p in plans if not p.skip}
    return sorted(seen, key=lambda g: (g[0] != 32, g[1]))


def boot(xen: Path, probe: Path, *, timeout: float = 300.0, memory: str = "3G",
         cmdline: tuple[str, ...] = ()) -> str:
    """Boot `xen` with `probe` as dom0 under QEMU (TCG); returns the serial log.

    `cmdline`: extra options for Xen's command line (a scenario's `xen_cmdline`).

    QEMU runs in its own process group and is killed by its pid if it outlives `timeout`.
    """
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise PvlabError("qemu-system-x86_64 is not installed",
                         "apt-get install --no-install-recommends qemu-system-x86")
    cmd = [qemu, "-machine", "q35,accel=tcg", "-cpu", "max", "-m", memory, "-smp", "1",
           "-nographic", "-no-reboot", "-monitor", "none", "-serial", "stdio",
           "-kernel", str(xen), "-initrd", str(probe), "-append",
           " ".join((XEN_ARGS, *cmdline))]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        timed_out = False
        while proc.poll() is None:
            if time.monotonic() > deadline:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.2)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if timed_out:
        text += f"\n[pvlab verify: QEMU killed after {timeout:.0f} s]\n"
    return text
