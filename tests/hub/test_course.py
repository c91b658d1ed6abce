# SPDX-License-Identifier: MIT
"""The course copied into a working folder: added once, a learner's edits never overwritten."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pvlab.commands import lab as lab_command
from pvlab.course import CHECKOUT, COURSE_DOCS, copy_course, course_files, course_source
from pvlab.errors import PvlabError


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A small stand-in for the packaged course (two folders, three files)."""
    root = tmp_path / "release"
    (root / "notebooks").mkdir(parents=True)
    (root / "exercises").mkdir()
    (root / "notebooks" / "01-a.ipynb").write_text('{"v": 1}')
    (root / "notebooks" / "02-b.ipynb").write_text('{"v": 1}')
    (root / "exercises" / "01-x.ipynb").write_text('{"v": 1}')
    return root


def test_the_checkout_course_is_notebooks_and_exercises_without_solutions() -> None:
    files = {p.as_posix() for p in course_files(CHECKOUT)}
    assert "notebooks/06-scenario-lab.ipynb" in files
    assert any(f.startswith("exercises/") for f in files)
    assert not any(f.startswith("solutions/") for f in files)
    assert course_source() in (CHECKOUT, CHECKOUT / "pvlab" / "_course")


def test_every_docs_page_a_course_notebook_links_travels_with_the_course() -> None:
    files = {p.as_posix() for p in course_files(CHECKOUT)}
    for rel in files:
        if rel.endswith(".ipynb"):
            text = (CHECKOUT / rel).read_text(encoding="utf-8")
            for page in set(re.findall(r"\.\./(docs/[A-Za-z0-9_.-]+\.md)", text)):
                assert page in files, f"{rel} links ../{page}, which the copied course lacks"
    assert set(COURSE_DOCS) <= files


def test_setup_py_ships_the_same_docs_pages() -> None:
    text = (CHECKOUT / "setup.py").read_text(encoding="utf-8")
    assert all(f'"{doc}"' in text for doc in COURSE_DOCS)


def test_first_copy_adds_everything(release: Path, tmp_path: Path) -> None:
    report = copy_course(tmp_path / "course", release, version="1")
    assert sorted(report.added) == ["exercises/01-x.ipynb", "notebooks/01-a.ipynb",
                                    "notebooks/02-b.ipynb"]
    assert (tmp_path / "course" / "notebooks" / "01-a.ipynb").read_text() == '{"v": 1}'
    assert "copied 3 course file(s)" in report.summary()


def test_a_second_copy_keeps_edits_and_adds_nothing(release: Path, tmp_path: Path) -> None:
    dest = tmp_path / "course"
    copy_course(dest, release, version="1")
    (dest / "notebooks" / "01-a.ipynb").write_text('{"mine": true}')
    report = copy_course(dest, release, version="1")
    assert report.added == [] and report.beside == [] and report.updated == []
    assert (dest / "notebooks" / "01-a.ipynb").read_text() == '{"mine": true}'
    assert "up to date" in report.summary()
    assert sorted(p.name for p in (dest / "notebooks").iterdir()) == ["01-a.ipynb", "02-b.ipynb"]


def test_a_new_release_goes_beside_an_edited_file_and_updates_the_others(
        release: Path, tmp_path: Path) -> None:
    dest = tmp_path / "course"
    copy_course(dest, release, version="1")
    (dest / "notebooks" / "01-a.ipynb").write_text('{"mine": true}')
    (release / "notebooks" / "01-a.ipynb").write_text('{"v": 2}')
    (release / "notebooks" / "02-b.ipynb").write_text('{"v": 2}')
    (release / "notebooks" / "03-c.ipynb").write_text('{"v": 2}')
    report = copy_course(dest, release, version="2")
    assert (dest / "notebooks" / "01-a.ipynb").read_text() == '{"mine": true}'
    assert (dest / "notebooks" / "01-a.new-2.ipynb").read_text() == '{"v": 2}'
    assert (dest / "notebooks" / "02-b.ipynb").read_text() == '{"v": 2}'  # never edited
    assert report.beside == ["notebooks/01-a.new-2.ipynb"]
    assert report.updated == ["notebooks/02-b.ipynb"]
    assert report.added == ["notebooks/03-c.ipynb"]
    assert "01-a.new-2.ipynb" in report.summary()
    # And again: nothing more, the learner's file still theirs.
    again = copy_course(dest, release, version="2")
    assert again.added == again.beside == again.updated == []
    assert (dest / "notebooks" / "01-a.ipynb").read_text() == '{"mine": true}'


def test_a_deleted_file_comes_back(release: Path, tmp_path: Path) -> None:
    dest = tmp_path / "course"
    copy_course(dest, release, version="1")
    (dest / "exercises" / "01-x.ipynb").unlink()
    assert copy_course(dest, release, version="1").added == ["exercises/01-x.ipynb"]


def test_a_file_in_the_way_is_refused(release: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "course"
    blocker.write_text("not a folder")
    with pytest.raises(PvlabError, match="not a folder"):
        copy_course(blocker, release)


def test_lab_outside_a_checkout_copies_the_course(
        release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr("pvlab.course.course_source", lambda: release)
    dest = tmp_path / "my-course"
    found = lab_command.find_notebooks(None, str(dest))
    assert found == (dest / "notebooks").resolve()
    assert (dest / "exercises" / "01-x.ipynb").is_file()
    assert "copied 3 course file(s)" in capsys.readouterr().out


def test_lab_course_dir_defaults_under_home(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.delenv("PVLAB_COURSE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert lab_command.default_course_dir() == tmp_path / "pvlab-course"
    monkeypatch.setenv("PVLAB_COURSE_DIR", str(tmp_path / "x"))
    assert lab_command.default_course_dir() == tmp_path / "x"


def test_no_course_anywhere_says_how_to_fix(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    def nothing() -> Path:
        raise PvlabError("no course")

    monkeypatch.setattr("pvlab.course.course_source", nothing)
    with pytest.raises(PvlabError, match="install pvlab from a wheel"):
        lab_command.copy_installed_course(str(tmp_path / "c"))


def test_the_course_folder_is_not_in_git() -> None:
    assert "pvlab/_course/" in (CHECKOUT / ".gitignore").read_text()
