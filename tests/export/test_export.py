# SPDX-License-Identifier: MIT
"""`pvlab export`: a scenario as a self-contained regression test for Xen.

The unit tests check the directory and the `run` script's verdicts on a probe log without QEMU;
the slow test builds and boots exports on the project's Xen builds (like
tests/verify/test_oracle_corpus.py, whose set-up it reuses).
"""

from __future__ import annotations

import importlib.machinery
import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from pvlab.cli import main
from pvlab.export import export_scenario

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "scenarios"


def _load_run(directory: Path) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("exported_run", str(directory / "run"))
    module = ModuleType(loader.name)
    module.__file__ = str(directory / "run")
    loader.exec_module(module)
    return module


def test_export_writes_a_directory_without_pvlab(tmp_path: Path) -> None:
    out = tmp_path / "t"
    exp = export_scenario(CORPUS / "104-pv64-pin-bookkeeping.yaml", out, profile="4.17")
    names = {p.name for p in out.iterdir()}
    assert names == {"probe.c", "link.lds", "plan.h", "Makefile", "expected.json", "run",
                     "README.md"}
    assert (out / "run").stat().st_mode & 0o111
    assert "pvlab" not in "".join(line for line in (out / "run").read_text().splitlines()
                                  if line.startswith(("import", "from")))
    assert not any("GPL" in (out / n).read_text() for n in names)  # the Xen patch is not copied
    test = json.loads((out / "expected.json").read_text())
    assert test["probe_bits"] == exp.plan.boot == 64 and test["profile"] == "4.17"
    assert [(s["op"], s["expect"]) for s in test["steps"] if not s["skip"]] == [
        ("pin", "ok"), ("pin", "EINVAL"), ("unpin", "ok"), ("unpin", "EINVAL")]
    assert "Test result: SUCCESS" in (out / "README.md").read_text()


def test_export_refuses_a_scenario_verify_cannot_replay_and_a_used_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(CORPUS / "119-pv32-plain-write-non-pagetable.yaml"), "-o",
                 str(tmp_path / "a")]) == 2
    assert "export a scenario `pvlab verify` replays" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("")
    assert main(["export", str(CORPUS / "104-pv64-pin-bookkeeping.yaml"), "-o",
                 str(tmp_path / "b")]) == 2
    assert "is not empty" in capsys.readouterr().err


LOG = """\
PVLAB: probe 64-bit dom0 on Xen 4.17 scenarios=1
PVLAB: scenario 1 frame 0 mfn=0x7fa22
PVLAB: scenario 1 domid 5
PVLAB: scenario 1 step 1 rc=0
(XEN) arch/x86/mm.c:3588:d0v0 mfn 7fa22 already pinned
PVLAB: scenario 1 step 3 rc={rc2}
PVLAB: scenario 1 step 5 rc=0
(XEN) arch/x86/mm.c:3642:d0v0 mfn 7fa22 not pinned
PVLAB: scenario 1 step 7 rc=-22
PVLAB: scenario 1 end
PVLAB: done
"""


@pytest.mark.parametrize(("rc2", "verdict"), [
    (-22, "Test result: SUCCESS"),
    (0, "Test result: FAILURE: step 3 pin: expected EINVAL, got ok"),
])
def test_run_script_verdicts(rc2: int, verdict: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t"
    export_scenario(CORPUS / "104-pv64-pin-bookkeeping.yaml", out, profile="4.17")
    run = _load_run(out)
    monkeypatch.setattr(run, "build", lambda bits: str(out / "probe64"))
    monkeypatch.setattr(run, "boot", lambda *a: LOG.format(rc2=rc2))
    monkeypatch.setattr(run.shutil, "which", lambda name: "/usr/bin/qemu")
    xen = tmp_path / "xen"
    xen.write_text("")
    monkeypatch.setattr("sys.argv", ["run", "--xen", str(xen)])
    code = run.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == verdict and code == (0 if rc2 else 1)
    assert any(line.startswith("step 3 pin") and "xen: d0v0 mfn 7fa22 already pinned" in line
               for line in lines)
    assert any(line.startswith("step 2 expect_page") and "SKIP" in line for line in lines)


def test_run_script_reports_an_unfinished_probe_as_error(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    out = tmp_path / "t"
    export_scenario(CORPUS / "104-pv64-pin-bookkeeping.yaml", out, profile="4.17")
    run = _load_run(out)
    monkeypatch.setattr(run, "build", lambda bits: "probe64")
    monkeypatch.setattr(run, "boot", lambda *a: "(XEN) Assertion 'x' failed at "
                        "arch/x86/mm.c:1\n")
    monkeypatch.setattr(run.shutil, "which", lambda name: "/usr/bin/qemu")
    xen = tmp_path / "xen"
    xen.write_text("")
    monkeypatch.setattr("sys.argv", ["run", "--xen", str(xen)])
    assert run.main() == 1
    out_lines = capsys.readouterr().out.splitlines()
    assert out_lines[-1].startswith("Test result: FAILURE: step 1 pin: expected ok, but it did "
                                    "not run (last Xen line: Assertion 'x' failed")


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                    reason="gcc and make absent")
def test_the_exported_probe_builds_with_make_alone(tmp_path: Path) -> None:
    out = tmp_path / "t"
    export_scenario(CORPUS / "104-pv64-pin-bookkeeping.yaml", out, profile="4.17")
    subprocess.run(["make", "-s", "-C", str(out)], check=True, capture_output=True)
    assert (out / "probe64").is_file()


# ------------------------------------------------------------------ on real Xen (slow)
def _xen(profile: str) -> Path:
    """The project's build for `profile`: set up as tests/verify/test_oracle_corpus.py does
    (in CI it installs the tools and builds Xen), else skipped when absent."""
    from pvlab.verify.xenbuild import find_xen

    found = find_xen(profile)
    if found is not None and shutil.which("qemu-system-x86_64"):
        return found
    path = ROOT / "tests" / "verify" / "test_oracle_corpus.py"
    loader = importlib.machinery.SourceFileLoader("oracle_corpus_setup", str(path))
    module = ModuleType(loader.name)
    module.__file__ = str(path)
    loader.exec_module(module)
    return module._prepare()[profile]


EXPORTS = [
    "020-pv32-erange-leaves-no-trace.yaml",  # a 32-bit agent domU issues the guest's steps
    "108-pv64-map-pinned-table-rw-ebusy.yaml",  # 64-bit guest, entries read back
    "206-compat-l3-slot3-nx-einval.yaml",  # a refusal ("Bad L3 flags 800000"), no crash
]


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["4.17", "4.19"])
def test_exports_pass_on_the_project_xen_builds(profile: str, tmp_path: Path) -> None:
    xen = _xen(profile)
    for name in EXPORTS:
        out = tmp_path / name
        exp = export_scenario(CORPUS / name, out, profile=profile)
        result = subprocess.run([str(out / "run"), "--xen", str(xen), "--timeout", "400"],
                                capture_output=True, text=True, check=False)
        print(result.stdout)
        assert result.stdout.splitlines()[-1] == "Test result: SUCCESS", result.stdout
        assert result.returncode == 0
        # the probe (dom0) is 64-bit; 020's unprivileged 32-bit guest is the agent domU
        assert exp.plan.boot == 64
        if name.startswith("020"):
            assert exp.plan.mode == "agent" and exp.plan.bitness == 32


@pytest.mark.slow
def test_a_wrong_expectation_fails_naming_the_step(tmp_path: Path) -> None:
    xen = _xen("4.17")
    out = tmp_path / "wrong"
    export_scenario(CORPUS / "104-pv64-pin-bookkeeping.yaml", out, profile="4.17")
    test = json.loads((out / "expected.json").read_text())
    assert test["steps"][2]["expect"] == "EINVAL"
    test["steps"][2]["expect"] = "ok"  # pinning twice is refused: claim it is not
    (out / "expected.json").write_text(json.dumps(test))
    result = subprocess.run([str(out / "run"), "--xen", str(xen)], capture_output=True,
                            text=True, check=False)
    assert result.stdout.splitlines()[-1] == \
        "Test result: FAILURE: step 3 pin: expected ok, got EINVAL", result.stdout
    assert result.returncode == 1


def test_a_scenario_expectation_pvlab_disagrees_with_is_noted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scn = tmp_path / "s.yaml"
    scn.write_text("name: differs\nguest: {bitness: 64, vcpu0_initialised: true}\n"
                   "frames:\n  x: {}\nsteps:\n  - pin: {frame: x, level: 1}\n    expect: ok\n"
                   "  - pin: {frame: x, level: 1}\n    expect: ok\n")
    assert main(["export", str(scn), "-o", str(tmp_path / "out")]) == 0
    assert "note: step 2 pin: the scenario file expects ok, pvlab gives EINVAL" in \
        capsys.readouterr().out
    test = json.loads((tmp_path / "out" / "expected.json").read_text())
    assert test["steps"][1]["expect"] == "EINVAL"
    assert test["steps"][1]["scenario_expects"] == "ok"
