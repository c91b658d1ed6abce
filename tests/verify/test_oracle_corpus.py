# SPDX-License-Identifier: MIT
"""The public scenario corpus replayed on real Xen (4.17 and 4.17+check as "4.19") under QEMU.

Needs the two hypervisor builds (oracle/build-xen.sh), qemu-system-x86_64, gcc and gcc-multilib.
In CI (CI set, root, apt available) they are installed and built here (cached); locally the
test is skipped when they are absent. One QEMU boot per (profile, probe bitness).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pvlab.verify.compare import render, summary
from pvlab.verify.runner import verify
from pvlab.verify.xenbuild import PROFILES, RELEASE, RELEASE_PROFILE, build_xen, find_xen

CORPUS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))
IN_CI = bool(os.environ.get("CI"))


def _tools_ready() -> bool:
    return all(shutil.which(t) for t in ("qemu-system-x86_64", "gcc", "make")) and \
        Path("/usr/lib/gcc/x86_64-linux-gnu").exists()


def _prepare() -> dict[str, Path]:
    if IN_CI and os.geteuid() == 0 and not (_tools_ready() and Path("/usr/include/i386-linux-gnu"
                                                                    ).exists()):
        subprocess.run(["apt-get", "update", "-q"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                        "qemu-system-x86", "seabios", "ipxe-qemu", "gcc-multilib", "flex",
                        "bison", "dpkg-dev", "make"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    builds = {p: find_xen(p) for p in PROFILES}
    if IN_CI and not all(builds.values()):
        os.environ.setdefault("PVLAB_APT_INSTALL", "1")
        build_xen(PROFILES)
        builds = {p: find_xen(p) for p in PROFILES}
    if not all(builds.values()) or not _tools_ready():
        pytest.skip("Xen builds or QEMU absent (run oracle/build-xen.sh; CI builds them)")
    return builds  # type: ignore[return-value]


@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
def test_corpus_agrees_with_real_xen(profile: str) -> None:
    assert CORPUS, "the public corpus tests/scenarios/*.yaml is empty"
    xen = _prepare()[profile]
    reports = verify(CORPUS, profile, xen, timeout=400)
    print(summary(reports))
    for rep in reports:
        if rep.plan.skip:
            print(f"skipped scenario {rep.plan.source}: {rep.plan.skip}")
    bad = [rep for rep in reports if not rep.ok]
    assert not bad, render(bad)
    replayed = sum(r.verdict == "agree" for rep in reports for r in rep.rows)
    assert replayed > len(CORPUS), "too few steps were replayed on Xen to mean anything"
    # the agent domU: the unprivileged guests' own steps were issued by a real domU
    agent = [rep for rep in reports if rep.plan.mode == "agent"]
    assert len(agent) >= 20 and all(rep.ok for rep in agent)
    by_domu = [r for rep in agent for r in rep.rows if r.by == "domU"]
    assert len(by_domu) >= 50 and all(r.verdict == "agree" for r in by_domu)
    ops = {r.op for r in by_domu}
    assert {"vm_assist", "machphys_update", "tlb_flush", "new_user_baseptr", "mmuext",
            "vcpu_op_initialise", "pin", "mmu_update"} <= ops, ops
    # two domains: dom0 (the probe) maps the agent's grants through Xen's grant table
    multi = [rep for rep in agent if any(r.op.startswith("grant") for r in rep.rows)]
    grants = [r for rep in multi for r in rep.rows if "grant" in r.op and r.verdict == "agree"]
    assert len(multi) >= 20 and len(grants) >= 60
    assert {("grant", "domU"), ("grant_map", "dom0"), ("grant_unmap", "dom0"),
            ("expect_grant", "domU")} <= {(r.op, r.by) for r in grants}
    assert any(r.op == "destroy_domain" and r.verdict == "agree" for rep in multi
               for r in rep.rows)
    # a cache flush by the unprivileged agent is refused (dom0 may flush): EACCES from Xen
    (flush,) = [rep for rep in agent if rep.plan.name == "mmuext-cache-flush-unprivileged"]
    assert (flush.rows[0].by, flush.rows[0].xen) == ("domU", "EACCES")


@pytest.mark.slow
def test_corpus_agrees_with_a_release_build() -> None:
    """The third hypervisor (`oracle/build-xen.sh release`: 4.17 without CONFIG_DEBUG), when it
    has been built: scenarios with `xen_build: debug` are skipped, `release` ones replayed.
    Not built in CI (another ~2 minutes); `pvlab verify --build release` makes it."""
    xen = find_xen(RELEASE)
    if xen is None or not _tools_ready():
        pytest.skip("no release build (oracle/build-xen.sh release) or QEMU absent")
    reports = verify(CORPUS, RELEASE_PROFILE, xen, timeout=400, xen_build=RELEASE)
    print(summary(reports))
    bad = [rep for rep in reports if not rep.ok]
    assert not bad, render(bad)
    assert any(rep.plan.name == "pv64-partial-l2-release-leak" and not rep.plan.skip
               for rep in reports)
