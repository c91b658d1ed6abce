# SPDX-License-Identifier: MIT
"""Build hook: the course travels in the wheel, built from the one copy in the checkout.

Everything else about the package is in pyproject.toml. At wheel-build time this copies
notebooks/, exercises/ and the docs/ pages they link (never solutions/) into pvlab/_course/
of the build, where `pvlab.course.course_source()` finds them. Nothing is copied in git,
and an editable install reads the checkout's folders directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
COURSE_FOLDERS = ("notebooks", "exercises")
#: the pages the notebooks link as ../docs/NAME (pvlab.course.COURSE_DOCS; a test keeps them equal)
COURSE_DOCS = ("docs/glossary.md", "docs/cheatsheet.md", "docs/course-facts.md",
               "docs/security.md", "docs/scenarios.md")


class BuildPyWithCourse(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "pvlab" / "_course"
        for folder in COURSE_FOLDERS:
            src = ROOT / folder
            if src.is_dir():
                shutil.copytree(src, target / folder, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(".ipynb_checkpoints",
                                                              "__pycache__", "*.pyc"))
        for doc in COURSE_DOCS:
            (target / doc).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / doc, target / doc)


setup(cmdclass={"build_py": BuildPyWithCourse})
