# SPDX-License-Identifier: MIT
"""The course (notebooks and solution-free exercises) and copying it into a working folder.

One source of truth: the checkout's `notebooks/` and `exercises/` folders. A built wheel
carries a copy of them as package data under `pvlab/_course/` (made at wheel-build time by
`setup.py`, never committed). `course_source()` finds whichever is there.

`copy_course(dest)` copies the course into `dest` without ever overwriting a file that is
already edited by the learner: their edits stay; a newer release's version of an edited
notebook is added beside it (`NAME.new-<version>.ipynb`) and reported.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pvlab.errors import PvlabError

#: The folders that make up the course, in the checkout and in the package data.
COURSE_FOLDERS = ("notebooks", "exercises")
#: The reference pages the notebooks link as ../docs/NAME (glossary, cheat sheet, facts,
#: the XSA page, the scenario format).
COURSE_DOCS = ("docs/glossary.md", "docs/cheatsheet.md", "docs/course-facts.md",
               "docs/security.md", "docs/scenarios.md")
#: Never shipped: the instructors' solutions.
EXCLUDED_FOLDERS = ("solutions",)
PACKAGE_COURSE = Path(__file__).resolve().parent / "_course"
CHECKOUT = Path(__file__).resolve().parents[1]


@dataclass
class CopyReport:
    """What `copy_course` did, file by file (paths relative to the destination)."""

    dest: Path
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    beside: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = []
        if self.added:
            lines.append(f"copied {len(self.added)} course file(s) into {self.dest}")
        if self.updated:
            lines.append(f"updated {len(self.updated)} file(s) you had not edited")
        if self.beside:
            lines.append("you edited these files; this release's version was put beside them:")
            lines += [f"  {name}" for name in self.beside]
        if not lines:
            lines.append(f"course in {self.dest} is up to date (your edits are kept)")
        return "\n".join(lines)


def _is_course_root(path: Path) -> bool:
    return (path / "notebooks").is_dir()


def course_source() -> Path:
    """The folder holding notebooks/ and exercises/: the package data, else the checkout."""
    for candidate in (PACKAGE_COURSE, CHECKOUT):
        if _is_course_root(candidate):
            return candidate
    raise PvlabError("this pvlab installation carries no course (no notebooks/ found)",
                     "reinstall pvlab from a wheel built by `pip wheel .` or use a checkout")


def course_files(source: Path) -> list[Path]:
    """Course files relative to `source`: every file under the course folders."""
    files = []
    for folder in COURSE_FOLDERS:
        root = source / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not any(
                    part in (".ipynb_checkpoints", "__pycache__") for part in path.parts):
                files.append(path.relative_to(source))
    files += [Path(doc) for doc in COURSE_DOCS if (source / doc).is_file()]
    return files


MANIFEST = ".pvlab-course.json"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _beside_name(rel: Path, version: str) -> Path:
    return rel.with_name(f"{rel.stem}.new-{version}{rel.suffix}")


def copy_course(dest: Path, source: Path | None = None, version: str | None = None) -> CopyReport:
    """Copy the course into `dest` (created if needed); never overwrite a learner's edit.

    `dest/.pvlab-course.json` remembers the digest of each file as last copied. A file whose
    release version changed is updated in place only if the learner never edited it;
    otherwise the new version goes beside it as NAME.new-VERSION.ipynb (listed in `beside`).
    """
    from pvlab import __version__

    source = course_source() if source is None else source
    version = version or __version__
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise PvlabError(f"course folder {dest} exists and is not a folder",
                         "pass another --course-dir")
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / MANIFEST
    try:
        shipped: dict[str, str] = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        shipped = {}
    report = CopyReport(dest)
    for rel in course_files(source):
        key = rel.as_posix()
        src, target = source / rel, dest / rel
        new = _digest(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copy2(src, target)
            report.added.append(key)
        else:
            have = _digest(target)
            if have == new or shipped.get(key) == new:
                report.kept.append(key)  # identical, or the learner's edit of this release
            elif shipped.get(key) == have:
                shutil.copy2(src, target)  # never edited: take the new release
                report.updated.append(key)
            else:
                beside = _beside_name(rel, version)
                report.kept.append(key)
                if not (dest / beside).exists():
                    shutil.copy2(src, dest / beside)
                    report.beside.append(beside.as_posix())
        shipped[key] = new
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(shipped, indent=1, sort_keys=True) + "\n")
    tmp.replace(manifest_path)
    return report


def main(argv: list[str] | None = None) -> int:
    """`python -m pvlab.course DEST`: copy the course into DEST (used by the Z2JH user image's
    start hook, deploy/z2jh/values.yaml); prints what it did."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pvlab.course",
                                     description="Copy the pvlab course into a folder; never "
                                     "overwrite a learner's edits.")
    parser.add_argument("dest", help="folder to copy notebooks/ and exercises/ into")
    args = parser.parse_args(argv)
    try:
        report = copy_course(Path(args.dest))
    except PvlabError as err:
        print(f"pvlab.course: {err}")
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
