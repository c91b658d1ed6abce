# SPDX-License-Identifier: MIT
"""The lab without widgets: actions, replay, undo, step/back, export.

A :class:`LabSession` keeps a :class:`~pvlab.ui.document.Document` (a scenario in the
making) and rebuilds the hypervisor state from it after every action by running it
with the scenario runner. So undo is "restore the previous document", changing the
guest's bitness or the Xen profile replays every step under the new settings, and
export is the document itself. An action that cannot be carried out (a name that does
not exist, a frame that cannot be allocated) changes nothing and says why in the status.

Every method reports through :attr:`status_text` and :attr:`log`; none raises for a
mistake a learner can make, because a widget callback's exception is never seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pvlab.errors import PvlabError
from pvlab.scenario import ScenarioRun, load_scenario
from pvlab.scenario.registry import steps
from pvlab.trace import Outcome
from pvlab.units import MFN_4GIB, PAGE_SHIFT, format_size, parse_size
from pvlab.x86.flags import parse_flags
from pvlab.xen.domain import VM_ASSISTS, vm_assist_names, vm_assist_number
from pvlab.xen.hypervisor import Xen
from pvlab.xen.profiles import PROFILES, get_profile

from .document import (
    Document,
    Draft,
    HexInt,
    document_from_scenario,
    dump_yaml,
    export_data,
    flags_list,
    role_from_name,
)
from .examples import example_path

FrameRef = str | int


@dataclass(frozen=True)
class FrameRow:
    """One guest frame as the frame map shows it."""

    name: str
    mfn: int
    role: int | None
    type: str
    type_count: int
    count: int
    pinned: bool
    validated: bool
    #: the last hypercall failed validating this frame (it is not a live table now)
    failed: bool
    #: the last hypercall's failing check names this frame, which stays a live table
    #: (e.g. the shared slot-3 L2 under 4.17: validated, and where the check stopped)
    refused_at: bool = False
    #: with `domains:`, the owner as the scenario names it ("dom0 (d1)"); else ""
    owner: str = ""

    @property
    def address(self) -> int:
        return self.mfn << PAGE_SHIFT

    @property
    def above_4g(self) -> bool:
        return self.mfn >= MFN_4GIB

    @property
    def side(self) -> str:
        return "above 4 GiB" if self.above_4g else "below 4 GiB"


def assist_probe(profile: str, bitness: int) -> dict[str, Outcome]:
    """VM-assist name -> the outcome of `do_vm_assist(enable, name)` on a fresh guest.

    The lab asks the core instead of knowing Xen's rules: a refused assist carries Xen's
    reason and function in its outcome (`arch_vm_assist_valid_mask`, profile policies).
    """
    key = (get_profile(profile).name, bitness)
    if key not in _PROBES:
        xen = Xen(key[0], "64MiB")
        _PROBES[key] = {name: xen.create_domain(bitness).vm_assist("enable", name)
                        for name in VM_ASSISTS}
    return _PROBES[key]


_PROBES: dict[tuple[str, int], dict[str, Outcome]] = {}


def assist_validity(profile: str, bitness: int) -> dict[str, str]:
    """VM-assist name -> "" when the core accepts it for this guest, else Xen's refusal."""
    out = {}
    for name, outcome in assist_probe(profile, bitness).items():
        ev = outcome.failure
        out[name] = "" if outcome.ok or ev is None else (
            f"{ev.explanation}: {outcome.op} returns -{outcome.errno} [{ev.xen_function}]")
    return out


class LabSession:
    """The scenario lab's state and actions (no widgets; `pvlab.ui.Lab` adds them)."""

    def __init__(self, *, profile: str | None = None, bitness: int = 64) -> None:
        self.doc = Document.empty(xen=get_profile(profile).name, bitness=bitness)
        self._undo: list[Document] = []
        self.log: list[str] = []
        self.status_text = ""
        self.status_kind = "info"  # ok, fail, error, info
        self.last_outcome: Outcome | None = None
        self.last_error: PvlabError | None = None
        #: the state before the last action (what the change badges compare with)
        self.previous_run: ScenarioRun | None = None
        #: with `domains:`: whose tables the picture draws (None: the issuer of the last
        #: step, see :meth:`picture_domain`) and who issues the lab's hypercalls (`as:`;
        #: None: the scenario's default domain)
        self.view_domain: str | None = None
        self.acting_domain: str | None = None
        #: the profile compare mode runs on the right (None: :func:`compare_partner`)
        self.compare_profile: str | None = None
        self.run: ScenarioRun = self.doc.build()
        self._say("info", "empty lab: allocate frames, write entries, then pin")

    # ------------------------------------------------------------------ reading state
    def _edited_spec(self) -> Any:
        """The settings the Guest controls show and change: `guest:`, or with `domains:`
        the `as` domain's (:attr:`acting_domain`; default: the scenario's default)."""
        scn = self.doc.scenario
        if self.acting_domain in self.domain_names:
            return scn.domains[self.acting_domain]
        return scn.guest

    @property
    def bitness(self) -> int:
        return int(self._edited_spec().bitness)

    @property
    def profile(self) -> str:
        return self.doc.xen

    @property
    def vm_assists(self) -> list[str]:
        return [str(a) for a in self._edited_spec().vm_assists]

    @property
    def vcpu0_initialised(self) -> bool:
        return bool(self._edited_spec().vcpu0_initialised)

    @property
    def frames(self) -> dict[str, int]:
        """Frame name -> MFN, as allocated now."""
        return dict(self.run.frames)

    @property
    def position(self) -> int:
        return self.doc.cursor

    @property
    def steps(self) -> list[str]:
        return [s.describe() for s in self.doc.steps]

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def failed_frame(self) -> str | None:
        """The name of the frame where the last outcome stopped, if it failed there."""
        out = self.last_outcome
        if out is None or out.ok or out.failed_mfn is None:
            return None
        return self.run.frame_name(out.failed_mfn) or hex(out.failed_mfn)

    def mfn(self, frame: FrameRef) -> int:
        if isinstance(frame, int):
            return frame
        if frame not in self.run.frames:
            raise PvlabError(f"no frame named {frame!r}", self._frame_fix())
        return self.run.frames[frame]

    def role(self, frame: str) -> int | None:
        return self.doc.roles.get(frame)

    def frame_rows(self) -> list[FrameRow]:
        m = self.run.xen.machine
        out = self.last_outcome
        failed = out.failed_mfn if out is not None and not out.ok else None
        rows = []
        owners = ({g.domid: f"{n} (d{g.domid})" for n, g in self.run.domains.items()}
                  if self.domain_names else None)
        for name, mfn in self.run.frames.items():
            pi = m.page(mfn)
            live = pi.validated and pi.type_count > 0
            owner = "" if owners is None else (
                "free" if pi.owner is None else owners.get(pi.owner, f"d{pi.owner}"))
            rows.append(FrameRow(name, mfn, self.doc.roles.get(name), pi.type_name,
                                 pi.type_count, pi.count, pi.pinned, pi.validated,
                                 failed == mfn and not live, failed == mfn and live, owner))
        return sorted(rows, key=lambda r: r.mfn)

    def run_before_last_step(self) -> ScenarioRun | None:
        """The state just before the last applied step (for its replay and its diff)."""
        if self.doc.cursor == 0:
            return None
        prev = self.previous_run
        if (prev is not None and len(prev.steps) == self.doc.cursor - 1
                and prev.scenario.steps[:len(prev.steps)] == self.doc.steps[:len(prev.steps)]
                and prev.profile == self.run.profile
                and prev.scenario.guest == self.doc.scenario.guest):
            return prev
        return self.doc.build(cursor=self.doc.cursor - 1)

    def compare_run(self, mode: str) -> tuple[str, ScenarioRun] | None:
        """The same document under the other profile (`"profile"`) or bitness (`"bitness"`).

        Returns a label and the run, or None when the other side cannot be built (say
        why in the label instead: e.g. a VM-assist that the other bitness refuses).
        """
        if mode == "profile":
            other = self.compare_against()
            return f"Xen {other}", self.doc.build(profile=other)
        if mode == "bitness":
            bits = ({32, 64} - {self.bitness}).pop()
            valid = assist_validity(self.profile, bits)
            doc = self.doc.with_guest(
                bitness=bits, vm_assists=[a for a in self.doc.vm_assists if not valid.get(a)])
            doc.placed = dict(self.doc.placed)
            return f"{bits}-bit PV guest", doc.build(profile=self.profile,
                                                     cursor=self.doc.cursor)
        return None

    @property
    def domain_names(self) -> list[str]:
        """The scenario's domains (`domains:`); empty for a one-guest (`guest:`) document."""
        scn = self.doc.scenario
        return list(scn.domains) if scn.multi_domain else []

    def picture_domain(self, run: ScenarioRun | None = None) -> str | None:
        """With `domains:`, whose tables the picture draws: :attr:`view_domain` if set,
        else the domain that issued the last hypercall step (a destroyed domain has no
        tables left: then the first live one); None for a one-guest document."""
        run = run or self.run
        names = self.domain_names
        if not names:
            return None
        alive = [n for n in names if n not in run.destroyed]
        if self.view_domain in names:
            return self.view_domain
        for res in reversed(run.steps):
            if res.is_check:
                continue
            step = run.scenario.steps[res.index - 1]
            kind = steps().get(step.op)
            who = (run.scenario.toolstack_domain if kind is not None and kind.privileged_only
                   and step.as_domain is None else run.scenario.issuer(step))
            if who in alive:
                return who
            break
        default = run.scenario.default_domain
        return default if default in alive else (alive or names)[0]

    def set_view_domain(self, name: str | None) -> bool:
        """Draw domain `name`'s tables (None or "": follow the issuer of the last step)."""
        if name and name not in self.domain_names:
            self._say("error", f"no domain {name!r} to draw: "
                      + (f"use one of {', '.join(self.domain_names)}" if self.domain_names
                         else "this document has one guest (load a scenario with domains:)"))
            return False
        self.view_domain = name or None
        return True

    def set_acting_domain(self, name: str | None) -> bool:
        """Issue the lab's next hypercalls `as:` domain `name` (None: the default domain)."""
        if name and name not in self.domain_names:
            self._say("error", f"no domain {name!r} to act as: "
                      + (f"use one of {', '.join(self.domain_names)}" if self.domain_names
                         else "this document has one guest (load a scenario with domains:)"))
            return False
        self.acting_domain = name or None
        return True

    def compare_against(self) -> str:
        """The profile compare mode draws on the right: the one chosen, else the partner
        of the document's (`pvlab.ui.compare.scenario_partner`: an XSA scenario's
        pre-xsa-NNN profile beside fixed Xen, a pre-xsa-NNN profile beside 4.19)."""
        from .compare import scenario_partner  # compare.py draws (pvlab.render)

        return get_profile(self.compare_profile
                           or scenario_partner(self.doc.scenario, self.profile)).name

    def set_compare_profile(self, profile: str | None) -> bool:
        """The profile compare mode draws beside the document's (None: the partner)."""
        if profile:
            try:
                profile = get_profile(profile).name
            except PvlabError as err:
                self._say("error", err.message)
                return False
        self.compare_profile = profile or None
        return True

    def domain_summary(self) -> str:
        if self.domain_names:  # several domains: one clause each
            parts = []
            for name, g in self.run.domains.items():
                d = g.domain
                head = (f"{name} (d{d.domid}, {d.bitness}-bit PV"
                        + (", privileged" if d.privileged else "") + ")")
                if name in self.run.destroyed:
                    parts.append(f"{head}: destroyed at step {self.run.destroyed[name]}")
                else:
                    parts.append(f"{head}: {self._vcpu_text(g)}; VM-assists: "
                                 + (", ".join(vm_assist_names(d.vm_assist)) or "none"))
            return f"Xen profile {self.run.profile}; " + "; ".join(parts)
        d = self.run.guest.domain
        assists = ", ".join(vm_assist_names(d.vm_assist)) or "none"
        return (f"{d.bitness}-bit PV guest {d.label} on Xen profile {self.run.profile}; "
                f"{self._vcpu_text(self.run.guest)}; VM-assists: {assists}")

    def _vcpu_text(self, guest: Any) -> str:
        d = guest.domain
        v0 = d.vcpu(0)
        if v0 is None:
            vcpu = "no vCPU 0 yet"
        elif v0.is_initialised:
            table = v0.guest_table
            name = self.run.frame_name(table) if table is not None else None
            vcpu = ("vCPU 0 initialised" + (f", CR3 -> {name or hex(table)}"
                                              if table is not None else " (running guest)"))
        else:
            vcpu = "vCPU 0 not initialised (toolstack still building)"
        return vcpu

    def trace_text(self) -> str:
        return self.last_outcome.explain() if self.last_outcome is not None else ""

    # ------------------------------------------------------------------ reporting
    def _say(self, kind: str, text: str) -> None:
        self.status_kind = kind
        self.status_text = text
        self.log.append(text.splitlines()[0] if text else text)

    def _frame_fix(self) -> str:
        names = ", ".join(self.doc.frames) or "none yet"
        return f"allocate it first (frames: {names})"

    def _outcome_text(self, what: str, out: Outcome) -> str:
        if out.ok:
            return f"{what}: ok"
        ev = out.failure
        where = f" [{ev.xen_function}]" if ev else ""
        return f"{what}: {out.result} ({out.rc}) — {out.reason}{where}"

    def _commit(self, what: str, mutate: Callable[[Draft], str | None], *,
                is_step: bool = False) -> bool:
        """Apply `mutate` to a draft of the document, validate and rebuild it, and keep it
        if it builds. The status is this action's own result: a step's outcome for a
        hypercall, "ok" for an edit that was done, "error" for one that was refused."""
        draft = self.doc.draft()
        draft.domain = self.acting_domain if self.acting_domain in self.domain_names else None
        try:
            note = mutate(draft)
            new = Document.from_draft(draft)
            run = new.build()
        except PvlabError as err:
            self.last_error = err
            fix = f" Fix: {err.fix}" if err.fix else ""
            self._say("error", f"{what}: not done — {err.message}.{fix}")
            return False
        self.last_error = None
        self._undo.append(self.doc)
        self.previous_run = self.run
        self.doc, self.run = new, run
        last = run.steps[-1] if run.steps else None
        self.last_outcome = last.outcome if last is not None else None
        extra = f" ({note})" if note else ""
        if is_step and last is not None:
            self._say("ok" if last.outcome.ok else "fail",
                      self._outcome_text(f"#{last.index} {what}", last.outcome) + extra)
        elif last is not None:
            self._say("ok", f"{what}{extra}; replayed {len(run.steps)} step(s), last "
                      + self._outcome_text(f"#{last.index} {last.description}", last.outcome))
        else:
            self._say("ok", f"{what}{extra}")
        return True

    # ------------------------------------------------------------------ settings
    def set_bitness(self, bitness: int) -> bool:
        """64 (PV64) or 32 (PV32 on 64-bit Xen); replays every step."""

        def mutate(d: Draft) -> str | None:
            if bitness not in (32, 64):
                raise PvlabError(f"bitness {bitness!r} is not 32 or 64", "choose 32 or 64")
            d.guest["bitness"] = int(bitness)
            valid = assist_validity(self.profile, int(bitness))
            have = [str(a) for a in d.guest.get("vm_assists", [])]
            dropped = [a for a in have if valid.get(a)]
            d.guest["vm_assists"] = [a for a in have if a not in dropped]
            return (f"dropped {', '.join(dropped)}: not valid for a {bitness}-bit guest"
                    if dropped else None)
        return self._commit(f"guest bitness {bitness}", mutate)

    def set_profile(self, profile: str) -> bool:
        def mutate(d: Draft) -> None:
            d.data["xen"] = get_profile(profile).name
        return self._commit(f"Xen profile {profile}", mutate)

    def set_vm_assist(self, name: str, enabled: bool = True) -> bool:
        """The VM-assists the domain has when the steps start (scenario `guest.vm_assists`)."""

        def mutate(d: Draft) -> None:
            vm_assist_number(name)
            key = str(name).lower().removeprefix("vmasst_type_")
            why = assist_validity(self.profile, self.bitness).get(key, "")
            if enabled and why:
                raise PvlabError(f"Xen refuses it: {why}",
                                 "change the guest's bitness or the Xen profile first, or "
                                 "choose another VM-assist")
            rest = [str(a) for a in d.guest.get("vm_assists", []) if a != key]
            d.guest["vm_assists"] = [*rest, key] if enabled else rest
        return self._commit(f"VM-assist {name} {'on' if enabled else 'off'}", mutate)

    def set_vcpu0_initialised(self, initialised: bool) -> bool:
        """Start with vCPU 0 running (the guest booted) or not (the toolstack is building)."""

        def mutate(d: Draft) -> None:
            d.guest["vcpu0_initialised"] = bool(initialised)
        return self._commit(f"vCPU 0 {'initialised' if initialised else 'not initialised'} "
                            "at start", mutate)

    # ------------------------------------------------------------------ frames
    def allocate(self, name: str | None = None, *, level: int | None = None,
                 below: int | str | None = None, above: int | str | None = None,
                 mfn: int | str | None = None) -> str | None:
        """Allocate a guest frame; returns its name (None if it could not be done)."""
        chosen = ""

        def mutate(d: Draft) -> None:
            nonlocal chosen
            if name is not None and name in d.frames:
                raise PvlabError(f"a frame named {name!r} exists already",
                                 "choose another name, or leave the name empty")
            if name is not None and not str(name).isidentifier():
                raise PvlabError(f"frame name {name!r} is not a simple name",
                                 "use letters, digits and _ (e.g. l3b)")
            if level is not None and level not in (1, 2, 3, 4):
                raise PvlabError(f"level {level!r} is not 1-4", "choose L1, L2, L3 or L4")
            base = name or (f"l{level}" if level else "f")
            chosen = d.unique_name(base) if name is None else name
            spec: dict[str, Any] = {}
            if mfn is not None:
                try:
                    number = int(mfn, 0) if isinstance(mfn, str) else int(mfn)
                except ValueError:
                    raise PvlabError(f"MFN {mfn!r} is not a number",
                                     "type a frame number such as 0x100200") from None
                users = [n for n, m in d.placed.items() if m == number]
                if users:
                    raise PvlabError(f"MFN {number:#x} is already frame {users[0]}",
                                     "choose a free frame number, or leave it to the allocator")
                spec["mfn"] = HexInt(number)
            if below is not None:
                spec["below"] = format_size(parse_size(below, what="below"))
            if above is not None:
                spec["above"] = format_size(parse_size(above, what="above"))
            if d.domain is not None:
                spec["owner"] = d.domain  # with domains:, the `as` domain's frame
            d.frames[chosen] = spec
            role = level or role_from_name(chosen)
            if role:
                d.roles[chosen] = role
        where = ("at mfn " + (hex(mfn) if isinstance(mfn, int) else str(mfn)) if mfn is not None
                 else f"below {below}" if below is not None
                 else f"above {above}" if above is not None else "anywhere")
        ok = self._commit(f"allocate {name or 'a frame'} {where}", mutate)
        if not ok:
            return None
        got = self.run.frames[chosen]
        self.status_text = (f"allocated {chosen} {where}: mfn {got:#x} (addr "
                            f"{got << PAGE_SHIFT:#x}, {'above' if got >= MFN_4GIB else 'below'}"
                            " 4 GiB)")
        self.log[-1] = self.status_text
        return chosen

    def free(self, name: str) -> bool:
        """Give a frame back (only one that nothing in the sketch uses)."""

        def mutate(d: Draft) -> None:
            if name not in d.frames:
                raise PvlabError(f"no frame named {name!r}", self._frame_fix())
            users = d.references(name)
            if users:
                raise PvlabError(f"{name} is still used by {', '.join(users)}",
                                 "undo those actions first (undo), or free another frame")
            del d.frames[name]
            d.placed.pop(name, None)
            d.roles.pop(name, None)
            d.tables.pop(name, None)
        return self._commit(f"free {name}", mutate)

    def set_role(self, name: str, level: int) -> bool:
        """Mark a frame as meant to be an L`level` table (the pin default)."""

        def mutate(d: Draft) -> None:
            if name not in d.frames:
                raise PvlabError(f"no frame named {name!r}", self._frame_fix())
            if level not in (1, 2, 3, 4):
                raise PvlabError(f"level {level!r} is not 1-4", "choose L1, L2, L3 or L4")
            d.roles[name] = level
        return self._commit(f"make {name} an L{level}", mutate)

    # ------------------------------------------------------------------ entries
    @staticmethod
    def _entry(d: Draft, target: FrameRef | None, flags: Iterable[str] | str | int,
               value: int | None) -> dict[str, Any]:
        if value is not None:
            return {"value": HexInt(int(value))}
        if target is None or target == "":
            return {"value": HexInt(0)}
        bits = parse_flags(flags)
        if isinstance(target, str):
            if target.strip().lower().startswith("0x") or target.strip().isdigit():
                return {"mfn": HexInt(int(target, 0)), "flags": flags_list(bits)}
            if target not in d.frames:
                names = ", ".join(d.frames) or "none yet"
                raise PvlabError(f"no frame named {target!r}",
                                 f"use a frame name ({names}) or a number such as 0x1234")
            return {"to": target, "flags": flags_list(bits)}
        return {"mfn": HexInt(int(target)), "flags": flags_list(bits)}

    def _check_table(self, d: Draft, table: str, index: int) -> None:
        if table not in d.frames:
            raise PvlabError(f"no frame named {table!r}", self._frame_fix())
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 511:
            raise PvlabError(f"entry index {index!r} is not 0-511", "give an index 0-511")

    def set_entry(self, table: str, index: int, target: FrameRef | None = None,
                  flags: Iterable[str] | str | int = "P", *, value: int | None = None) -> bool:
        """Write an entry as the guest writes its own memory (no hypercall).

        Before any step this is the frame's initial content (scenario `tables:`); later it
        is a `write` step, which faults on a live pagetable (use `mmu_update` then).
        """
        as_table = self.doc.cursor == 0

        def mutate(d: Draft) -> str | None:
            self._check_table(d, table, index)
            entry = self._entry(d, target, flags, value)
            if as_table:
                d.tables.setdefault(table, {})[index] = entry
                return None
            return d.append_step({"write": {"table": table, "index": index, **entry}})
        text = f"{table}[{index}] = " + (f"{value:#x}" if value is not None else
                                         f"{target} {flags}" if target not in (None, "")
                                         else "0")
        return self._commit(f"write {text}", mutate, is_step=not as_table)

    # ------------------------------------------------------------------ hypercalls
    def _step(self, what: str, make: Callable[[Draft], dict[str, Any]]) -> Outcome | None:
        def mutate(d: Draft) -> str | None:
            return d.append_step(self._as_acting(make(d)))
        if not self._commit(what, mutate, is_step=True):
            return None
        return self.last_outcome

    def _ref(self, d: Draft, frame: FrameRef) -> FrameRef:
        if isinstance(frame, str):
            if frame.strip().lower().startswith("0x") or frame.strip().isdigit():
                return HexInt(int(frame, 0))
            if frame not in d.frames:
                raise PvlabError(f"no frame named {frame!r}", self._frame_fix())
            return frame
        return HexInt(int(frame))

    def pin(self, frame: FrameRef, level: int | None = None) -> Outcome | None:
        """`MMUEXT_PIN_L<level>_TABLE` (level defaults to the frame's role)."""

        def make(d: Draft) -> dict[str, Any]:
            lvl = level if level is not None else d.roles.get(str(frame))
            if lvl not in (1, 2, 3, 4):
                raise PvlabError(f"which level should {frame} be pinned as?",
                                 "give level=1..4, or make the frame an L1..L4 first")
            if isinstance(frame, str) and frame in d.frames:
                d.roles.setdefault(frame, int(lvl))
            return {"pin": {"frame": self._ref(d, frame), "level": int(lvl)}}
        return self._step(f"pin {frame} as L{level or self.doc.roles.get(str(frame), '?')}",
                          make)

    def unpin(self, frame: FrameRef) -> Outcome | None:
        return self._step(f"unpin {frame}",
                          lambda d: {"unpin": {"frame": self._ref(d, frame)}})

    def new_baseptr(self, frame: FrameRef, *, vcpu: int = 0) -> Outcome | None:
        def make(d: Draft) -> dict[str, Any]:
            args: dict[str, Any] = {"frame": self._ref(d, frame)}
            if vcpu:
                args["vcpu"] = vcpu
            return {"new_baseptr": args}
        return self._step(f"new_baseptr {frame}", make)

    def initialise_vcpu0(self, cr3: FrameRef,
                         vm_assists: Iterable[str] | None = None) -> Outcome | None:
        """`XEN_DOMCTL_setvcpucontext` for vCPU 0 with CR3 = `cr3`.

        `vm_assists=None`: the context carries the domain's VM-assists as they are (the
        checkboxes); a list replaces them, as the real context's `vm_assist` field does.
        """

        def make(d: Draft) -> dict[str, Any]:
            args: dict[str, Any] = {"vcpu": 0, "cr3": self._ref(d, cr3)}
            if vm_assists is not None:
                names = list(vm_assists)
                for a in names:
                    vm_assist_number(a)
                args["vm_assists"] = names
            return {"vcpu_initialise": args}
        return self._step(f"initialise vCPU 0 with CR3 {cr3}", make)

    def vcpu_reset(self, vcpu: int = 0) -> Outcome | None:
        return self._step(f"vcpu_reset {vcpu}", lambda d: {"vcpu_reset": {"vcpu": vcpu}})

    def vm_assist(self, cmd: str, name: str) -> Outcome | None:
        """The guest's own `HYPERVISOR_vm_assist(enable|disable, name)` hypercall."""

        def make(d: Draft) -> dict[str, Any]:
            if cmd not in ("enable", "disable"):
                raise PvlabError(f"vm_assist command {cmd!r} unknown", "use enable or disable")
            vm_assist_number(name)
            return {"vm_assist": {cmd: name}}
        return self._step(f"vm_assist {cmd} {name}", make)

    def mmu_update(self, table: str, index: int, target: FrameRef | None = None,
                   flags: Iterable[str] | str | int = "P", *,
                   value: int | None = None) -> Outcome | None:
        """`MMU_NORMAL_PT_UPDATE` of entry `index` of `table` (checked by `mod_lN_entry`)."""

        def make(d: Draft) -> dict[str, Any]:
            self._check_table(d, table, index)
            return {"mmu_update": {"table": table, "index": index,
                                   **self._entry(d, target, flags, value)}}
        return self._step(f"mmu_update {table}[{index}]", make)

    def _as_acting(self, step: dict[str, Any]) -> dict[str, Any]:
        """`step` issued `as:` :attr:`acting_domain` (a step that names its own `as:`, or
        a one-guest document, is left alone)."""
        if not self.acting_domain or self.acting_domain not in self.domain_names:
            return step
        op = next((k for k in step if k not in ("expect", "note", "comment")), None)
        args = step.get(op) if op is not None else None
        if op is None or not isinstance(args, dict) or "as" in args:
            return step
        out = dict(step)
        out[op] = {"as": self.acting_domain, **args}
        return out

    def add_step(self, step: dict[str, Any]) -> Outcome | None:
        """Append any scenario step given as a mapping, e.g. `{"tlb_flush": {}}`, or with
        several domains a grant step: `{"grant": {"as": "guest", "ref": 1, "frame": "pg",
        "to": "dom0"}}` (without `as:`, the step is issued as :attr:`acting_domain`)."""
        op = next((k for k in step if k not in ("expect", "note", "comment")), "step")
        return self._step(f"{op} {step.get(op) or ''}".strip(), lambda d: dict(step))

    # ------------------------------------------------------------------ history
    def undo(self) -> bool:
        """Take back the last action (restores the previous sketch and replays it)."""
        if not self._undo:
            self._say("info", "nothing to undo")
            return False
        prev = self._undo.pop()
        try:
            run = prev.build()
        except PvlabError as err:  # pragma: no cover - every kept document built once
            self._say("error", f"undo: {err}")
            return False
        self.previous_run = self.run
        self.doc, self.run = prev, run
        last = run.steps[-1] if run.steps else None
        self.last_outcome = last.outcome if last is not None else None
        tail = (f"; now after #{last.index} {last.description}: {last.result}" if last
                else "; no steps applied")
        self._say("info", f"undone{tail}")
        return True

    def _goto(self, cursor: int, what: str) -> bool:
        new = self.doc.copy()
        new.cursor = cursor
        try:
            run = new.build()
        except PvlabError as err:
            self._say("error", f"{what}: {err}")
            return False
        self.previous_run = self.run
        self.doc, self.run = new, run
        last = run.steps[-1] if run.steps else None
        self.last_outcome = last.outcome if last is not None else None
        if last is None:
            self._say("info", f"{what}: at the start, {len(self.doc.steps)} step(s) ahead")
            return True
        held = "" if last.held is None else (" (as expected)" if last.held
                                             else f" (expected {last.expected or 'the check'})")
        text = self._outcome_text(f"#{last.index}/{len(self.doc.steps)} {last.description}",
                                  last.outcome) + held
        if last.is_check:
            ev = last.outcome.events[0] if last.outcome.events else None
            text = (f"#{last.index}/{len(self.doc.steps)} {last.description}: "
                    f"{'holds' if last.held else 'does not hold'}"
                    + (f" — {ev.explanation}" if ev else ""))
        self._say("ok" if last.outcome.ok and last.held is not False else "fail", text)
        return True

    def step(self) -> bool:
        """Apply the next step of a loaded scenario."""
        if self.doc.cursor >= len(self.doc.steps):
            self._say("info", f"step: no more steps — still at step {self.doc.cursor}/"
                              f"{len(self.doc.steps)} (add one, or go back)")
            return False
        return self._goto(self.doc.cursor + 1, "step")

    def back(self) -> bool:
        """Go back one step (the state is rebuilt up to the step before)."""
        if self.doc.cursor == 0:
            self._say("info", "back: already at the start")
            return False
        return self._goto(self.doc.cursor - 1, "back")

    def run_to_end(self) -> bool:
        return self._goto(len(self.doc.steps), "run to the end")

    # ------------------------------------------------------------------ files
    def load(self, path_or_text: str | Path, *, source: str | None = None) -> bool:
        """Load a scenario (file path or YAML text); its steps wait for `step()`."""
        try:
            scn = load_scenario(path_or_text, source=source)
            doc = document_from_scenario(scn)
            run = doc.build()
        except PvlabError as err:
            self.last_error = err
            self._say("error", f"load: not done — {err}")
            return False
        self._undo.append(self.doc)
        self.previous_run = None
        self.doc, self.run, self.last_outcome = doc, run, None
        # another scenario: its own domains and its own profile partner
        self.view_domain = self.acting_domain = self.compare_profile = None
        self._say("info", f"loaded {doc.name}: {len(doc.frames)} frame(s), "
                          f"{len(doc.steps)} step(s) — press step to apply them")
        return True

    def load_example(self, name: str) -> bool:
        try:
            path = example_path(name)
        except PvlabError as err:
            self._say("error", f"load example: {err}")
            return False
        return self.load(path, source=f"example {path.stem}")

    def reset(self) -> bool:
        def mutate(d: Draft) -> None:
            fresh = Document.empty(xen=self.profile, bitness=self.bitness).draft()
            d.__dict__.update(fresh.__dict__)
        return self._commit("reset to an empty sketch", mutate)

    def export_data(self) -> dict[str, Any]:
        return export_data(self.doc, self.run)[0]

    def export_yaml(self, path: str | Path | None = None) -> str:
        """The current state as a scenario file (steps so far, expectations = outcomes)."""
        data, notes = export_data(self.doc, self.run)
        head = ["# Exported from the pvlab scenario lab; run it with `pvlab run FILE`.",
                *(f"# {n}" for n in notes)]
        text = "\n".join(head) + "\n" + dump_yaml(data)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


__all__ = ["FrameRow", "LabSession", "PROFILES", "assist_probe", "assist_validity"]
