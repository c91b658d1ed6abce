# SPDX-License-Identifier: MIT
"""Known differences between pvlab and real Xen, read from one file (known.yaml beside
this module, or `--known FILE`), each with its reason; the fuzzer filters them out, so a
clean run means "no unknown difference".

An entry matches a disagreeing step by its operation, pvlab's result and Xen's result, and
optionally by a regular expression over Xen's log line for that step, the guest's bitness
and the profile; or it matches a Xen crash by a regular expression over the crash headline
(``crash:``). Every entry must say why it is known (``reason:``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pvlab.errors import PvlabError

DEFAULT_FILE = Path(__file__).with_name("known.yaml")
_KEYS = {"id", "reason", "op", "pvlab", "xen", "log", "after", "bitness", "profile", "crash"}


@dataclass(frozen=True)
class Known:
    id: str
    reason: str
    op: str | None = None
    pvlab: str | None = None
    xen: str | None = None
    log: re.Pattern[str] | None = None
    bitness: int | None = None
    profile: str | None = None
    crash: re.Pattern[str] | None = None
    after: re.Pattern[str] | None = None

    def matches_step(self, *, op: str, pvlab: str, xen: str, log: str | None, bitness: int,
                     profile: str, earlier: list[str] | None = None) -> bool:
        if self.crash is not None:
            return False
        return ((self.op is None or self.op == op)
                and (self.pvlab is None or self.pvlab == pvlab)
                and (self.xen is None or self.xen == xen)
                and (self.log is None or (log is not None and bool(self.log.search(log))))
                and (self.after is None or any(self.after.search(ln) for ln in earlier or []))
                and (self.bitness is None or self.bitness == bitness)
                and (self.profile is None or self.profile == profile))

    def matches_crash(self, headline: str, profile: str) -> bool:
        return (self.crash is not None and bool(self.crash.search(headline))
                and (self.profile is None or self.profile == profile))


def load_known(path: Path | None = None) -> list[Known]:
    """The known differences of `path` (default: pvlab/fuzz/known.yaml)."""
    path = path or DEFAULT_FILE
    try:
        data = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError) as err:
        raise PvlabError(f"{path}: cannot read the known differences ({err})",
                         "fix the YAML, see docs/fuzzing.md") from err
    if not isinstance(data, list):
        raise PvlabError(f"{path}: the known differences must be a list",
                         "write one '- id: ...' mapping per difference")
    out = []
    for i, item in enumerate(data, start=1):
        out.append(_entry(path, i, item))
    return out


def _entry(path: Path, i: int, item: Any) -> Known:
    where = f"{path}: entry {i}"
    if not isinstance(item, dict):
        raise PvlabError(f"{where} is not a mapping", "write '- id: NAME' and its keys")
    unknown = set(item) - _KEYS
    if unknown:
        raise PvlabError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                         f"use only {', '.join(sorted(_KEYS))}")
    if not item.get("id") or not item.get("reason"):
        raise PvlabError(f"{where}: every known difference needs an id and a reason",
                         "add id: NAME and reason: WHY")
    if "crash" not in item and not {"op", "pvlab", "xen"} & set(item):
        raise PvlabError(f"{where} ({item['id']}) would match every difference",
                         "say which op/pvlab/xen result, or which crash, it is")

    def rx(key: str) -> re.Pattern[str] | None:
        if key not in item:
            return None
        try:
            return re.compile(str(item[key]))
        except re.error as err:
            raise PvlabError(f"{where}: {key}: bad regular expression ({err})",
                             "fix the pattern") from err

    return Known(str(item["id"]), str(item["reason"]).strip(),
                 op=item.get("op"), pvlab=item.get("pvlab"), xen=item.get("xen"),
                 log=rx("log"), bitness=item.get("bitness"),
                 profile=str(item["profile"]) if "profile" in item else None,
                 crash=rx("crash"), after=rx("after"))


def known_step(known: list[Known], **row: Any) -> Known | None:
    return next((k for k in known if k.matches_step(**row)), None)


def known_crash(known: list[Known], headline: str, profile: str) -> Known | None:
    return next((k for k in known if k.matches_crash(headline, profile)), None)
