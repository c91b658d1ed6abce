# SPDX-License-Identifier: MIT
"""Build hook: the course travels in the wheel, built from the one copy in the checkout.

Everything else about the package is in pyproject.toml. At wheel-build time this copies
notebooks/ and exercises/ (never solutions/) into pvlab/_course/ of the build, where
`pvlab.course.course_source()` finds them. Nothing is copied in git, and an editable install
reads the checkout's folders directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
COURSE_FOLDERS = ("notebooks", "exercises")


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


setup(cmdclass={"build_py": BuildPyWithCourse})
