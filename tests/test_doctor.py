# SPDX-License-Identifier: MIT
"""`pvlab doctor`: each probe made to fail yields a failing line with a fix; all good -> exit 0."""

from __future__ import annotations

import pytest

from pvlab import doctor
from pvlab.cli import main
from pvlab.commands.doctor import format_report

GOOD_VERSIONS = {
    "pvlab": "0.1.0",
    "ipywidgets": "8.1.5",
    "jupyterlab_widgets": "3.0.13",
    "jupyterlab": "4.3.0",
}


@pytest.fixture
def healthy(monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    """Every probe answers as on a good set-up; tests then break one thing each."""
    versions: dict[str, str | None] = dict(GOOD_VERSIONS)
    monkeypatch.setattr(doctor, "python_version", lambda: (3, 11, 7))
    monkeypatch.setattr(doctor, "dist_version", lambda dist: versions.get(dist))
    monkeypatch.setattr(doctor, "module_found", lambda module: True)
    monkeypatch.setattr(doctor, "which", lambda prog: "/usr/bin/dot")
    monkeypatch.setattr(doctor, "dot_version",
                        lambda path: "dot - graphviz version 2.43.0 (0)")
    monkeypatch.setattr(doctor, "kernel_specs",
                        lambda: {"python3": "/venv/share/jupyter/kernels/python3"})
    return versions


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {check.name: check for check in checks}


def failing(checks: list[doctor.Check]) -> list[doctor.Check]:
    return [check for check in checks if not check.ok]


def test_all_green_when_every_probe_is_good(healthy: dict) -> None:
    checks = doctor.run_checks()
    assert [c.name for c in checks] == [
        "Python", "pvlab", "Graphviz dot", "ipywidgets", "JupyterLab", "Python kernel"]
    assert failing(checks) == []
    assert "/usr/bin/dot: dot - graphviz version 2.43.0" in by_name(checks)["Graphviz dot"].detail
    assert by_name(checks)["pvlab"].detail == "pvlab 0.1.0"


def test_old_python_fails_with_a_fix(healthy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "python_version", lambda: (3, 10, 12))
    [bad] = failing(doctor.run_checks())
    assert bad.name == "Python"
    assert "3.10.12" in bad.detail and "3.11" in bad.detail
    assert bad.fix and "3.11" in bad.fix


def test_missing_dot_fails_and_names_the_fallback(
        healthy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "which", lambda prog: None)
    [bad] = failing(doctor.run_checks())
    assert bad.name == "Graphviz dot"
    assert "fallback" in bad.detail
    assert bad.fix and "apt-get install graphviz" in bad.fix


def test_broken_dot_fails(healthy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "dot_version", lambda path: None)
    [bad] = failing(doctor.run_checks())
    assert bad.name == "Graphviz dot" and bad.fix


@pytest.mark.parametrize(
    ("widgets", "frontend"),
    [("8.1.5", "1.1.7"), ("7.8.1", "3.0.13"), ("9.0.0", "3.0.13")],
)
def test_mismatched_widget_versions_fail(
        healthy: dict, widgets: str, frontend: str) -> None:
    healthy["ipywidgets"], healthy["jupyterlab_widgets"] = widgets, frontend
    [bad] = failing(doctor.run_checks())
    assert bad.name == "ipywidgets"
    assert widgets in bad.detail and frontend in bad.detail
    assert bad.fix and "jupyterlab_widgets>=3" in bad.fix


def test_widgets_7_with_frontend_1_is_a_matching_pair(healthy: dict) -> None:
    healthy["ipywidgets"], healthy["jupyterlab_widgets"] = "7.8.1", "1.1.7"
    assert failing(doctor.run_checks()) == []


@pytest.mark.parametrize("dist", ["ipywidgets", "jupyterlab_widgets", "jupyterlab"])
def test_missing_lab_packages_fail(healthy: dict, dist: str) -> None:
    healthy[dist] = None
    bad = failing(doctor.run_checks())
    assert len(bad) == 1 and bad[0].fix and "[lab]" in bad[0].fix


def test_pvlab_not_importable_fails(healthy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "module_found", lambda module: module != "pvlab")
    [bad] = failing(doctor.run_checks())
    assert bad.name == "pvlab" and bad.fix and "pip install -e ." in bad.fix


def test_pvlab_not_installed_fails(healthy: dict) -> None:
    healthy["pvlab"] = None
    [bad] = failing(doctor.run_checks())
    assert bad.name == "pvlab" and "not installed" in bad.detail


def test_no_python3_kernel_fails(healthy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "kernel_specs", lambda: {"ir": "/x/ir"})
    [bad] = failing(doctor.run_checks())
    assert bad.name == "Python kernel" and "found: ir" in bad.detail
    assert bad.fix and "ipykernel install" in bad.fix


def test_crashing_probe_is_reported_not_raised(
        healthy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> dict[str, str]:
        raise RuntimeError("kernel spec folder unreadable")

    monkeypatch.setattr(doctor, "kernel_specs", boom)
    [bad] = failing(doctor.run_checks())
    assert "kernel spec folder unreadable" in bad.detail and bad.fix


def test_report_prints_a_fix_under_each_failing_line(
        healthy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "which", lambda prog: None)
    monkeypatch.setattr(doctor, "python_version", lambda: (3, 9, 0))
    lines = format_report(doctor.run_checks()).splitlines()
    fails = [i for i, line in enumerate(lines) if line.startswith("FAIL")]
    assert len(fails) == 2
    for i in fails:
        assert lines[i + 1].strip().startswith("fix: ")
    assert lines[-1] == "2 check(s) failed"


def test_command_exit_codes(healthy: dict, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "all checks passed"
    monkeypatch.setattr(doctor, "which", lambda prog: None)
    assert main(["doctor"]) == 1
    assert "FAIL Graphviz dot" in capsys.readouterr().out


def test_real_probes_run_on_this_machine() -> None:
    """Unpatched: the probes work here (dot may legitimately be absent without root)."""
    checks = by_name(doctor.run_checks())
    assert checks["Python"].ok
    assert checks["pvlab"].ok, checks["pvlab"].detail
    assert checks["JupyterLab"].ok and checks["ipywidgets"].ok, checks["ipywidgets"].detail
    assert checks["Python kernel"].ok, checks["Python kernel"].detail
    dot = checks["Graphviz dot"]
    assert dot.ok == (doctor.which("dot") is not None)
