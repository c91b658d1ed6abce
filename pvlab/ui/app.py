# SPDX-License-Identifier: MIT
"""`Lab`: the scenario lab as an ipywidgets app in two panes.

```python
from pvlab.ui import Lab
lab = Lab()                              # display(lab) or leave it last in a cell
lab.set_bitness(32); lab.allocate("l3", above="4GiB"); lab.allocate("l2")
lab.set_entry("l3", 3, "l2", "P"); lab.set_vcpu0_initialised(True)
lab.pin("l3", 3)                         # -> Outcome; lab.status_text says -ERANGE and why
```

Controls sit in a compact column on the left; the picture fills the right pane, scaled
to fit (zoom and pan in the browser), with the status line above it, so the result of
a click is always in view. After a hypercall the picture holds the promotion replay of
that step (one frame per trace event, slider and play button in the browser) ending on
the state after it with what changed marked. Modes: projector (large, high contrast),
side by side (the same document under two Xen profiles or two guest bitnesses) and
predict-then-reveal (guess the result and the failing frame, then see the replay; a
score is kept).

Each widget handler calls one :class:`~pvlab.ui.session.LabSession` action and
re-renders; the same actions are methods of `Lab`, so a test or a notebook cell drives
the app exactly as clicks do. Every widget carries a stable CSS class (`lab-bitness`,
`lab-pin`, `lab-status`, `lab-picture`, ...; see `docs/lab.md`) for browser tests.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import ipywidgets as w

from pvlab.errors import PvlabError
from pvlab.render import snapshot, svg_many
from pvlab.render.danger import dangers_in
from pvlab.render.diffview import xen_added_flags
from pvlab.render.replay import build as build_replay
from pvlab.render.view import View
from pvlab.scenario import ScenarioRun
from pvlab.trace import Errno, Outcome
from pvlab.xen.abi import abi_for
from pvlab.xen.domain import VM_ASSIST_HELP, VM_ASSISTS
from pvlab.xen.profiles import PROFILES

from .bits import FLAG_COMBOS, cr3_ruler_html, entry_ruler_html
from .compare import compare_choices
from .examples import examples
from .picture import HAVE_ANYWIDGET, make_picture
from .pictures import (
    frame_map_html,
    guest_written,
    inline_svg,
    lab_hints,
    log_html,
    picture_bits,
    picture_html,
    picture_names,
    picture_title,
    status_html,
    tables_picture,
    trace_html,
)
from .session import FrameRef, LabSession, assist_validity

WHERE = {"anywhere": "anywhere", "below 4 GiB": "below", "above 4 GiB": "above",
         "at MFN": "mfn"}
LEVELS = [("as its role", 0), ("L1", 1), ("L2", 2), ("L3", 3), ("L4", 4)]
ROLES = [("-", 0), ("L1", 1), ("L2", 2), ("L3", 3), ("L4", 4)]
COMPARE = [("one picture", ""), ("Xen profile | profile", "profile"),
           ("32-bit | 64-bit", "bitness")]
#: The domain menus' "not chosen" entries (a document with `domains:` only).
FOLLOW = ("the step's issuer", "")
DEFAULT_ISSUER = ("the default domain", "")
#: Results a learner can predict (ok and the errnos Xen's PV MM paths return).
PREDICT_RESULTS = ["ok", "ERANGE", "EINVAL", "EBUSY", "EPERM", "EEXIST", "ENOMEM", "EFAULT"]
NO_GUESS = "(your guess)"
NO_FRAME = "(no frame fails)"
#: Replays longer than this are not sent with every click (a large state stays quick).
REPLAY_LIMIT = 48
#: Pictures with more nodes than this are drawn by the built-in SVG renderer (about 3 ms
#: of CPU for 64 frames; `dot` lays a 34-node picture out in about 50 ms on a busy
#: machine, and an action draws the picture and each replay frame), so a click stays quick.
DOT_NODE_LIMIT = 24
#: Picture height: the lab's top rows and the picture's toolbar above it stay in view.
PICTURE_HEIGHT = "max(320px, calc(100vh - 190px))"

_LAB_CSS = """
<style>
.lab-app { width: 100%; }
.lab-app .lab-controls { flex: 0 0 380px; max-width: 380px; overflow-y: auto;
  max-height: calc(100vh - 90px); }
.lab-app .lab-controls .widget-label, .lab-app .lab-controls label { min-width: 0; }
.lab-app .lab-controls > *, .lab-app .lab-box > * { flex-shrink: 0; }
.lab-app .lab-assists { display: grid; grid-template-columns: 1fr 1fr; }
.lab-app .lab-assists .widget-checkbox { height: auto; }
.lab-app .lab-right { flex: 1 1 0; min-width: 0; }
.lab-app .lab-pane { flex: 1 1 0; min-width: 0; }
.lab-app .lab-box { border: 1px solid #ddd; padding: 3px 4px; margin: 2px 0; }
.lab-app .lab-box-title { font-weight: bold; line-height: 1.2; }
.lab-app .widget-html-content { line-height: 1.3; }
.lab-app.lab-projector, .lab-app.lab-projector .widget-label,
.lab-app.lab-projector .widget-html-content, .lab-app.lab-projector button,
.lab-app.lab-projector select, .lab-app.lab-projector input { font-size: 17px !important;
  color: #000; }
.lab-app.lab-projector .lab-status-text { font-size: 20px !important; }
.lab-app.lab-projector .pv-caption { font-size: 18px; }
.lab-app.lab-projector .pv-view { border: 2px solid #000; }
.lab-app.lab-projector .lab-controls { flex-basis: 430px; max-width: 430px; }
</style>
"""
#: On its own page (the Voila app) the lab takes the whole window.
_PAGE_CSS = """
<style>
body, .jp-Notebook, .jp-NotebookPanel, #rendered_cells { padding: 0 !important;
  margin: 0 !important; max-width: none !important; }
.jp-Cell, .jp-Cell-outputWrapper, .jp-OutputArea-output { padding: 0 !important;
  margin: 0 !important; max-width: none !important; }
.jp-OutputPrompt, .jp-OutputArea-prompt { display: none !important; }
.lab-app { padding: 4px 8px; box-sizing: border-box; }
</style>
"""


def _cls(widget: w.DOMWidget, name: str) -> w.DOMWidget:
    widget.add_class(name)
    return widget


def _button(label: str, css: str, tip: str, style: str = "") -> w.Button:
    b = w.Button(description=label, tooltip=tip, button_style=style,
                 layout=w.Layout(width="auto"))
    return _cls(b, css)


def _box(title: str, *rows: w.Widget) -> w.VBox:
    return _cls(w.VBox([_cls(w.HTML(title), "lab-box-title"), *rows]), "lab-box")


def _narrow(width: str) -> dict[str, Any]:
    return {"layout": w.Layout(width=width), "style": {"description_width": "initial"}}


class Lab:
    """The scenario lab: controls, picture, status, trace and log over a `LabSession`."""

    def __init__(self, *, profile: str | None = None, bitness: int = 64,
                 example: str | None = None, predict: bool = False,
                 projector: bool = False, compare: str = "", page: bool = False) -> None:
        self.session = LabSession(profile=profile, bitness=bitness)
        self._syncing = False
        self.picture: Any | None = None
        self.render_error: str = ""
        self.example_loaded: str | None = None
        self.predict_mode = predict
        self.guess: tuple[str, str | None] | None = None
        self.score = [0, 0]  # right, asked
        self.last_reveal = ""
        self.compare = compare
        self.page = page
        self.replay: Any | None = None
        self._pending: tuple[Any, ...] | None = None
        self._build_widgets()
        self.w_projector.value = projector
        self.w_predict_mode.value = predict
        self.w_compare.value = compare
        if example is not None:
            self.session.load_example(example)
            self.example_loaded = example
        self._refresh()

    # ------------------------------------------------------------------ state (read)
    @property
    def status_text(self) -> str:
        return self.session.status_text

    @property
    def status_kind(self) -> str:
        return self.session.status_kind

    @property
    def last_outcome(self) -> Outcome | None:
        return self.session.last_outcome

    @property
    def run(self) -> ScenarioRun:
        return self.session.run

    @property
    def frames(self) -> dict[str, int]:
        return self.session.frames

    @property
    def log(self) -> list[str]:
        return list(self.session.log)

    @property
    def failed_frame(self) -> str | None:
        return self.session.failed_frame

    @property
    def picture_model(self) -> Any | None:
        return getattr(self.picture, "model", None)

    @property
    def bitness(self) -> int:
        return self.session.bitness

    @property
    def position(self) -> int:
        return self.session.position

    @property
    def steps(self) -> list[str]:
        return self.session.steps

    def trace_text(self) -> str:
        return self.session.trace_text()

    def mfn(self, frame: FrameRef) -> int:
        return self.session.mfn(frame)

    # ------------------------------------------------------------------ actions
    def _act(self, fn: Callable[..., Any], *args: Any, hypercall: bool = False,
             **kwargs: Any) -> Any:
        if hypercall and self.predict_mode and self.guess is None:
            self.session._say("error", "predict first: pick the result and the frame that "
                                       "will fail, then press the hypercall")
            self._refresh()
            return None
        try:
            result = fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - a callback's exception is never seen
            self.session._say("error", f"internal error: {type(err).__name__}: {err}")
            result = None
        if hypercall and self.predict_mode and self.guess is not None:
            self._reveal()
        self._refresh()
        return result

    def set_bitness(self, bitness: int) -> bool:
        return self._act(self.session.set_bitness, bitness)

    def set_profile(self, profile: str) -> bool:
        return self._act(self.session.set_profile, profile)

    def set_vm_assist(self, name: str, enabled: bool = True) -> bool:
        return self._act(self.session.set_vm_assist, name, enabled)

    def set_vcpu0_initialised(self, initialised: bool) -> bool:
        return self._act(self.session.set_vcpu0_initialised, initialised)

    def allocate(self, name: str | None = None, *, level: int | None = None,
                 below: int | str | None = None, above: int | str | None = None,
                 mfn: int | str | None = None) -> str | None:
        return self._act(self.session.allocate, name, level=level, below=below, above=above,
                         mfn=mfn)

    def free(self, name: str) -> bool:
        return self._act(self.session.free, name)

    def set_role(self, name: str, level: int) -> bool:
        return self._act(self.session.set_role, name, level)

    def set_entry(self, table: str, index: int, target: FrameRef | None = None,
                  flags: Iterable[str] | str | int = "P", *, value: int | None = None) -> bool:
        return self._act(self.session.set_entry, table, index, target, flags, value=value)

    def mmu_update(self, table: str, index: int, target: FrameRef | None = None,
                   flags: Iterable[str] | str | int = "P", *,
                   value: int | None = None) -> Outcome | None:
        return self._act(self.session.mmu_update, table, index, target, flags, value=value,
                         hypercall=True)

    def pin(self, frame: FrameRef, level: int | None = None) -> Outcome | None:
        return self._act(self.session.pin, frame, level, hypercall=True)

    def unpin(self, frame: FrameRef) -> Outcome | None:
        return self._act(self.session.unpin, frame, hypercall=True)

    def new_baseptr(self, frame: FrameRef, *, vcpu: int = 0) -> Outcome | None:
        return self._act(self.session.new_baseptr, frame, vcpu=vcpu, hypercall=True)

    def initialise_vcpu0(self, cr3: FrameRef,
                         vm_assists: Iterable[str] | None = None) -> Outcome | None:
        return self._act(self.session.initialise_vcpu0, cr3, vm_assists, hypercall=True)

    def vcpu_reset(self, vcpu: int = 0) -> Outcome | None:
        return self._act(self.session.vcpu_reset, vcpu, hypercall=True)

    def vm_assist(self, cmd: str, name: str) -> Outcome | None:
        return self._act(self.session.vm_assist, cmd, name, hypercall=True)

    def add_step(self, step: dict[str, Any]) -> Outcome | None:
        return self._act(self.session.add_step, step, hypercall=True)

    def undo(self) -> bool:
        return self._act(self.session.undo)

    def step(self) -> bool:
        return self._act(self.session.step)

    def back(self) -> bool:
        return self._act(self.session.back)

    def run_to_end(self) -> bool:
        return self._act(self.session.run_to_end)

    def reset(self) -> bool:
        self._clear_export()
        return self._act(self.session.reset)

    def load(self, path_or_text: str | Path) -> bool:
        ok = self._act(self.session.load, path_or_text)
        if ok:
            self.example_loaded = None
            self._clear_export()
            self._refresh()
        return bool(ok)

    def load_example(self, name: str) -> bool:
        ok = self._act(self.session.load_example, name)
        if ok:
            self.example_loaded = name
            self._clear_export()
            self._refresh()
        return bool(ok)

    def export_yaml(self, path: str | Path | None = None) -> str:
        text = self.session.export_yaml(path)
        self._show_export(text)
        return text

    # ------------------------------------------------------------------ modes
    def set_projector(self, on: bool) -> None:
        """Large fonts and high contrast for a room (`lab-projector` on the app)."""
        if on:
            self.widget.add_class("lab-projector")
        else:
            self.widget.remove_class("lab-projector")
        if self.w_projector.value != on:
            self.w_projector.value = on

    def set_compare(self, mode: str, against: str | None = None) -> None:
        """"" (one picture), "profile" (the document's profile | `against`; by default a
        pre-xsa-NNN profile's fixed version, else 4.17 | 4.19) or "bitness" (32 | 64-bit)."""
        if mode not in ("", "profile", "bitness"):
            self.session._say("error", f"compare mode {mode!r} unknown: use '', 'profile' "
                                       "or 'bitness'")
        elif against is not None and not self.session.set_compare_profile(against):
            pass  # the session said why
        else:
            self.compare = mode
            if self.w_compare.value != mode:
                self.w_compare.value = mode
        self._refresh()

    def set_view_domain(self, name: str | None) -> bool:
        """With `domains:`, draw domain `name`'s tables (None: the last step's issuer)."""
        ok = self.session.set_view_domain(name)
        self._refresh()
        return ok

    def set_acting_domain(self, name: str | None) -> bool:
        """With `domains:`, issue the lab's hypercalls `as:` domain `name`."""
        ok = self.session.set_acting_domain(name)
        self._refresh()
        return ok

    def set_predict_mode(self, on: bool) -> None:
        """Predict, then reveal: guess a hypercall's result and failing frame first."""
        self.predict_mode = bool(on)
        self.guess = None
        if self.w_predict_mode.value != on:
            self.w_predict_mode.value = on
        self._refresh()

    def predict(self, result: str, frame: str | None = None) -> None:
        """The guess for the next hypercall: its result (`ok`, `ERANGE`, ...) and, for a
        failure, the frame whose check will fail."""
        res = str(result).strip().upper().lstrip("-")
        res = "ok" if res == "OK" else res
        if res != "ok" and res not in Errno.__members__:
            self.session._say("error", f"{result!r} is not a result: use ok or an errno "
                                       "name such as ERANGE")
            self._refresh()
            return
        self.guess = (res, frame or None)
        self._syncing = True
        try:
            self.w_guess_result.value = res if res in PREDICT_RESULTS else NO_GUESS
            self.w_guess_frame.value = frame if frame in self.frames else NO_FRAME
        finally:
            self._syncing = False

    def _reveal(self) -> None:
        assert self.guess is not None
        res, frame = self.guess
        out = self.session.last_outcome
        self.guess = None
        if out is None:  # the action was not done (a user error): no question asked
            return
        actual_frame = self.session.failed_frame if not out.ok else None
        right = res == out.result and (out.ok or frame in (None, actual_frame))
        self.score[1] += 1
        self.score[0] += int(right)
        said = res + (f" at {frame}" if frame else "")
        truth = out.result + (f" at {actual_frame}" if actual_frame else "")
        self.last_reveal = (f"{'right' if right else 'wrong'}: you said {said}, Xen says "
                            f"{truth}")
        self.session.log.append(f"prediction {self.last_reveal}")

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self) -> None:
        self._build_header()
        self._build_guest()
        self._build_frames()
        self._build_entry()
        self._build_hypercalls()
        self._build_scenario()
        self._build_outputs()
        self._wire()
        self._lay_out()

    def _build_header(self) -> None:
        self.w_title = w.HTML("<b>pvlab scenario lab</b> — a Xen PV guest's pagetables, "
                              "checked as Xen checks them")
        self.w_projector = _cls(w.ToggleButton(description="projector", value=False,
                                               tooltip="large fonts, high contrast",
                                               layout=w.Layout(width="auto")),
                                "lab-projector-toggle")
        self.w_compare = _cls(w.Dropdown(options=COMPARE, value="", description="compare",
                                         **_narrow("230px")), "lab-compare")
        self.w_compare_profile = _cls(w.Dropdown(
            options=compare_choices(), value=None, description="against",
            tooltip="the profile drawn on the right (a pre-xsa-NNN profile: its fixed "
                    "version by default)", **_narrow("300px")), "lab-compare-profile")
        self.w_predict_mode = _cls(w.Checkbox(value=False, description="predict, then reveal",
                                              indent=False, layout=w.Layout(width="auto")),
                                   "lab-predict-mode")
        self.w_score = _cls(w.HTML(), "lab-score")
        self.w_status = _cls(w.HTML(), "lab-status")

    def _build_guest(self) -> None:
        s = self.session
        self.w_bitness = _cls(w.ToggleButtons(
            options=[("64-bit PV", 64), ("32-bit PV", 32)], value=s.bitness,
            tooltips=["a 64-bit PV guest (4-level paging)",
                      "a 32-bit PAE guest on 64-bit Xen (compat)"],
            style={"button_width": "82px"}), "lab-bitness")
        self.w_profile = _cls(w.Dropdown(
            options=[(f"Xen {n}", n) for n in PROFILES], value=s.profile,
            tooltip="; ".join(f"{n}: {p.description}" for n, p in PROFILES.items()),
            **_narrow("120px")), "lab-profile")
        self.w_vcpu0 = _cls(w.Checkbox(value=False, description="vCPU 0 initialised at start",
                                       indent=False, layout=w.Layout(width="auto")),
                            "lab-vcpu0")
        self.w_assists: dict[str, w.Checkbox] = {}
        for name in VM_ASSISTS:
            cb = w.Checkbox(value=False, description=name, indent=False,
                            tooltip=VM_ASSIST_HELP.get(name, ""),
                            layout=w.Layout(width="auto"))
            self.w_assists[name] = _cls(cb, f"lab-assist-{name}")
        self.w_assist_why = _cls(w.HTML(), "lab-assist-why")

    def _build_frames(self) -> None:
        self.w_frame_name = _cls(w.Text(placeholder="name, e.g. l3", **_narrow("110px")),
                                 "lab-frame-name")
        self.w_frame_role = _cls(w.Dropdown(options=ROLES, value=0, description="as",
                                            **_narrow("80px")), "lab-frame-role")
        self.w_where = _cls(w.Dropdown(options=list(WHERE), value="anywhere",
                                       **_narrow("115px")), "lab-alloc-where")
        self.w_alloc_mfn = _cls(w.Text(placeholder="mfn, e.g. 0x100200", **_narrow("150px")),
                                "lab-alloc-mfn")
        self.b_allocate = _button("allocate", "lab-allocate", "allocate a guest frame")
        self.w_free_frame = _cls(w.Dropdown(options=[], **_narrow("110px")), "lab-free-frame")
        self.b_free = _button("free", "lab-free", "give the frame back (if nothing uses it)")

    def _build_entry(self) -> None:
        self.w_table = _cls(w.Dropdown(options=[], description="table", **_narrow("140px")),
                            "lab-entry-table")
        self.w_index = _cls(w.BoundedIntText(value=0, min=0, max=511, description="index",
                                             **_narrow("110px")), "lab-entry-index")
        self.w_target = _cls(w.Combobox(options=[], placeholder="frame, mfn or empty",
                                        description="to", ensure_option=False,
                                        **_narrow("170px")), "lab-entry-target")
        self.w_flags = _cls(w.Combobox(value="P", options=list(FLAG_COMBOS),
                                       description="flags", ensure_option=False,
                                       tooltip="P RW US PWT PCD A D PS G AVAIL0-2 NX, joined "
                                               "with | (bits 52-62: write a raw value)",
                                       **_narrow("170px")), "lab-entry-flags")
        self.b_write = _button("write", "lab-write",
                               "the guest writes the entry itself (no hypercall)")
        self.b_mmu_update = _button("mmu_update", "lab-mmu-update",
                                    "MMU_NORMAL_PT_UPDATE: Xen checks the new entry")
        self.w_bits = _cls(w.HTML(), "lab-bits")

    def _build_hypercalls(self) -> None:
        self.w_op_frame = _cls(w.Dropdown(options=[], description="frame", **_narrow("150px")),
                               "lab-op-frame")
        self.w_op_level = _cls(w.Dropdown(options=LEVELS, value=0, description="level",
                                          **_narrow("160px")), "lab-op-level")
        self.b_pin = _button("pin", "lab-pin", "MMUEXT_PIN_Ln_TABLE: promote and pin",
                             "primary")
        self.b_unpin = _button("unpin", "lab-unpin", "MMUEXT_UNPIN_TABLE")
        self.b_baseptr = _button("new baseptr", "lab-new-baseptr",
                                 "MMUEXT_NEW_BASEPTR: load it as vCPU 0's CR3")
        self.b_vcpu_init = _button("init vCPU 0", "lab-vcpu-init",
                                   "XEN_DOMCTL_setvcpucontext: CR3 = this frame, VM-assists "
                                   "as ticked")
        self.w_as_domain = _cls(w.Dropdown(options=[DEFAULT_ISSUER], value="", description="as",
                                           tooltip="the domain that issues the hypercall "
                                                   "(as: in the scenario)",
                                           **_narrow("200px")), "lab-as-domain")
        self.w_view_domain = _cls(w.Dropdown(options=[FOLLOW], value="", description="draw",
                                             tooltip="whose pagetables the picture draws",
                                             **_narrow("200px")), "lab-view-domain")
        self.w_step_text = _cls(w.Text(
            placeholder="{grant: {as: guest, ref: 1, frame: pg, to: dom0}}",
            description="step", **_narrow("330px")), "lab-step-text")
        self.b_add_step = _button("add step", "lab-add-step",
                                  "append this scenario step (any step a file can have: "
                                  "grant, grant_map, grant_unmap, destroy_domain, ...)")
        self.w_domain_box = _cls(w.VBox([w.HBox([self.w_as_domain, self.w_view_domain],
                                                layout=w.Layout(flex_flow="row wrap")),
                                         w.HBox([self.w_step_text, self.b_add_step],
                                                layout=w.Layout(flex_flow="row wrap"))]),
                                 "lab-domain-box")
        self.w_guess_result = _cls(w.Dropdown(options=[NO_GUESS, *PREDICT_RESULTS],
                                              value=NO_GUESS, description="guess",
                                              **_narrow("175px")), "lab-guess-result")
        self.w_guess_frame = _cls(w.Dropdown(options=[NO_FRAME], value=NO_FRAME,
                                             description="fails at", **_narrow("200px")),
                                  "lab-guess-frame")
        self.w_predict_box = _cls(w.HBox([self.w_guess_result, self.w_guess_frame],
                                         layout=w.Layout(flex_flow="row wrap")),
                                  "lab-predict-box")

    def _build_scenario(self) -> None:
        self.w_example = _cls(w.Dropdown(options=examples(), value=None, description="example",
                                         **_narrow("250px")), "lab-example")
        self.b_load = _button("load", "lab-load", "load the bundled example")
        self.w_upload = _cls(w.FileUpload(accept=".yaml,.yml", multiple=False,
                                          description="load file"), "lab-upload")
        self.b_back = _button("◀ back", "lab-back", "go back one step")
        self.b_step = _button("step ▶", "lab-step", "apply the next step")
        self.b_undo = _button("undo", "lab-undo", "take back the last action", "warning")
        self.b_export = _button("export YAML", "lab-export",
                                "the current state as a scenario file for pvlab run")
        self.w_position = _cls(w.HTML(), "lab-position")
        self.w_yaml = _cls(w.Textarea(layout=w.Layout(width="98%", height="220px")),
                           "lab-yaml")
        self.w_download = _cls(w.HTML(), "lab-download")

    def _build_outputs(self) -> None:
        self.w_summary = _cls(w.HTML(), "lab-summary")
        self.w_picture = _cls(make_picture(PICTURE_HEIGHT), "lab-picture")
        self.w_picture_label = _cls(w.HTML(), "lab-picture-label")
        self.w_picture2 = _cls(make_picture(PICTURE_HEIGHT), "lab-picture-2")
        self.w_picture2_label = _cls(w.HTML(), "lab-picture-2-label")
        self.w_trace = _cls(w.HTML(), "lab-trace")
        self.w_changes = _cls(w.HTML(), "lab-changes")
        self.w_frame_map = _cls(w.HTML(), "lab-frame-map")
        self.w_log = _cls(w.HTML(layout=w.Layout(max_height="240px", overflow="auto")),
                          "lab-log")

    def _wire(self) -> None:
        self.w_bitness.observe(self._on_bitness, names="value")
        self.w_profile.observe(self._on_profile, names="value")
        self.w_vcpu0.observe(self._on_vcpu0, names="value")
        for name, cb in self.w_assists.items():
            cb.observe(self._assist_handler(name), names="value")
        self.w_upload.observe(self._on_upload, names="value")
        self.w_projector.observe(lambda ch: self.set_projector(bool(ch["new"])), names="value")
        self.w_compare.observe(self._on_compare, names="value")
        self.w_compare_profile.observe(self._on_compare_profile, names="value")
        self.w_as_domain.observe(self._on_as_domain, names="value")
        self.w_view_domain.observe(self._on_view_domain, names="value")
        self.w_predict_mode.observe(self._on_predict_mode, names="value")
        self.w_guess_result.observe(self._on_guess, names="value")
        self.w_guess_frame.observe(self._on_guess, names="value")
        self.w_table.observe(lambda _: self._show_bits(), names="value")
        self.w_index.observe(lambda _: self._show_bits(), names="value")
        if hasattr(self.w_picture, "selected"):
            self.w_picture.observe(self._on_picture_click, names="selected")
        clicks: dict[w.Button, Callable[[], Any]] = {
            self.b_allocate: self._on_allocate, self.b_free: self._on_free,
            self.b_write: lambda: self._on_entry(False),
            self.b_mmu_update: lambda: self._on_entry(True),
            self.b_pin: self._on_pin,
            self.b_unpin: lambda: self.unpin(self.w_op_frame.value or ""),
            self.b_baseptr: lambda: self.new_baseptr(self.w_op_frame.value or ""),
            self.b_vcpu_init: lambda: self.initialise_vcpu0(self.w_op_frame.value or ""),
            self.b_load: lambda: self.load_example(self.w_example.value or ""),
            self.b_back: self.back, self.b_step: self.step, self.b_undo: self.undo,
            self.b_export: self.export_yaml,
            self.b_add_step: self._on_add_step,
        }
        for button, fn in clicks.items():
            button.on_click(self._click(fn))

    def _lay_out(self) -> None:
        guest = _box("Guest",
                     w.HBox([self.w_bitness, self.w_profile]),
                     self.w_vcpu0,
                     _cls(w.Box(list(self.w_assists.values())), "lab-assists"),
                     self.w_assist_why)
        frames = _box("Frames",
                      w.HBox([self.w_frame_name, self.w_frame_role, self.w_where]),
                      w.HBox([self.w_alloc_mfn, self.b_allocate, self.w_free_frame,
                              self.b_free], layout=w.Layout(flex_flow="row wrap")))
        entry = _box("Entry",
                     w.HBox([self.w_table, self.w_index]),
                     w.HBox([self.w_target, self.w_flags], layout=w.Layout(flex_flow="row wrap")),
                     w.HBox([self.b_write, self.b_mmu_update]))
        calls = _box("Hypercalls (on the frame; click one in the picture)",
                     w.HBox([self.w_op_frame, self.w_op_level]),
                     self.w_domain_box,
                     self.w_predict_box,
                     w.HBox([self.b_pin, self.b_unpin, self.b_baseptr, self.b_vcpu_init],
                            layout=w.Layout(flex_flow="row wrap")))
        scenario = _box("Scenario",
                        w.HBox([self.w_example, self.b_load]),
                        w.HBox([self.b_back, self.b_step, self.w_position, self.b_undo],
                               layout=w.Layout(flex_flow="row wrap", align_items="center")),
                        w.HBox([self.w_upload, self.b_export, self.w_download],
                               layout=w.Layout(flex_flow="row wrap", align_items="center")))
        controls = _cls(w.VBox([calls, guest, frames, entry, scenario]), "lab-controls")
        self.w_pane1 = _cls(w.VBox([self.w_picture_label, self.w_picture]), "lab-pane")
        self.w_pane2 = _cls(w.VBox([self.w_picture2_label, self.w_picture2]), "lab-pane")
        self.w_details = _cls(w.Tab(
            children=[self.w_trace, self.w_changes, self.w_bits, self.w_frame_map, self.w_log,
                      w.VBox([self.w_yaml])],
            titles=["trace", "what changed", "bits", "frames", "log", "YAML"]), "lab-details")
        right = _cls(w.VBox([w.HBox([self.w_pane1, self.w_pane2]), self.w_summary,
                             self.w_details]), "lab-right")
        header = w.HBox([self.w_title, self.w_projector, self.w_compare,
                         self.w_compare_profile, self.w_predict_mode, self.w_score],
                        layout=w.Layout(flex_flow="row wrap", align_items="center"))
        css = _LAB_CSS + (_PAGE_CSS if self.page else "")
        self.widget = _cls(w.VBox([w.HTML(css), header, self.w_status,
                                   _cls(w.HBox([controls, right]), "lab-main")]), "lab-app")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ handlers
    def _click(self, fn: Callable[[], Any]) -> Callable[[w.Button], None]:
        def handler(_button: w.Button) -> None:
            fn()
        return handler

    def _on_bitness(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.set_bitness(int(change["new"]))

    def _on_profile(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.set_profile(str(change["new"]))

    def _on_vcpu0(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.set_vcpu0_initialised(bool(change["new"]))

    def _on_compare(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.set_compare(str(change["new"] or ""))

    def _on_compare_profile(self, change: dict[str, Any]) -> None:
        if not self._syncing and change["new"]:
            self.set_compare("profile", str(change["new"]))

    def _on_as_domain(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.set_acting_domain(str(change["new"] or "") or None)

    def _on_view_domain(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.set_view_domain(str(change["new"] or "") or None)

    def _on_add_step(self) -> None:
        """The step text box: one scenario step as YAML (safe_load; nothing is run)."""
        import yaml

        text = self.w_step_text.value.strip()
        try:
            step = yaml.safe_load(text) if text else None
        except yaml.YAMLError as err:
            self.session._say("error", f"the step is not YAML ({err.__class__.__name__}): "
                                       "write it as a scenario file does, e.g. {grant: "
                                       "{as: guest, ref: 1, frame: pg, to: dom0}}")
            self._refresh()
            return
        if not isinstance(step, dict) or not step:
            self.session._say("error", "write one step as a mapping, e.g. {grant_unmap: "
                                       "{as: dom0, handle: 0}}")
            self._refresh()
            return
        if self.add_step(step) is not None:
            self.w_step_text.value = ""

    def _on_predict_mode(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.set_predict_mode(bool(change["new"]))

    def _on_guess(self, _change: dict[str, Any]) -> None:
        if self._syncing:
            return
        res = self.w_guess_result.value
        frame = self.w_guess_frame.value
        self.guess = None if res == NO_GUESS else (res, None if frame == NO_FRAME else frame)

    def _on_picture_click(self, change: dict[str, Any]) -> None:
        name = str(change["new"] or "")
        if name and name in self.frames and not self._syncing:
            self.select_frame(name)

    def select_frame(self, name: str) -> None:
        """What a click on a frame in the picture does: hypercalls, entries and free act
        on it from now on; the bits tab shows its entry and CR3 rulers."""
        if name not in self.frames:
            self.session._say("error", f"no frame named {name!r}")
            self._refresh()
            return
        self._syncing = True
        try:
            for dd in (self.w_op_frame, self.w_table, self.w_free_frame):
                dd.value = name
        finally:
            self._syncing = False
        self._show_bits()

    def _assist_handler(self, name: str) -> Callable[[dict[str, Any]], None]:
        def handler(change: dict[str, Any]) -> None:
            if not self._syncing:
                self.set_vm_assist(name, bool(change["new"]))
        return handler

    def _on_allocate(self) -> None:
        where = WHERE[self.w_where.value]
        name = self.w_frame_name.value.strip() or None
        level = self.w_frame_role.value or None
        kwargs: dict[str, Any] = {}
        if where == "below":
            kwargs["below"] = "4GiB"
        elif where == "above":
            kwargs["above"] = "4GiB"
        elif where == "mfn":
            kwargs["mfn"] = self.w_alloc_mfn.value.strip() or "?"
        got = self.allocate(name, level=level, **kwargs)
        if got is not None:
            self.w_frame_name.value = ""
            self.w_frame_role.value = 0
            self._syncing = True
            try:
                self.w_table.value = got  # entries are written into the new frame next
            finally:
                self._syncing = False
            self._show_bits()

    def _on_free(self) -> None:
        if self.w_free_frame.value:
            self.free(self.w_free_frame.value)

    def _on_entry(self, hypercall: bool) -> None:
        table = self.w_table.value or ""
        target: str | None = self.w_target.value.strip() or None
        flags = self.w_flags.value or "0"
        if hypercall:
            self.mmu_update(table, int(self.w_index.value), target, flags)
        else:
            self.set_entry(table, int(self.w_index.value), target, flags)

    def _on_pin(self) -> None:
        level = self.w_op_level.value or None
        self.pin(self.w_op_frame.value or "", level)

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0]
        text = bytes(f["content"]).decode("utf-8", errors="replace")
        self.load(text if "\n" in text else text + "\n")

    def _show_export(self, text: str) -> None:
        self.w_yaml.value = text
        data = base64.b64encode(text.encode()).decode()
        name = html.escape(self.session.doc.name) + ".yaml"
        self.w_download.value = (f'<a download="{name}" href="data:text/yaml;base64,{data}">'
                                 f"download {name}</a>")
        self.w_details.selected_index = 5

    def _clear_export(self) -> None:
        self.w_yaml.value = ""
        self.w_download.value = ""

    # ------------------------------------------------------------------ re-render
    def _refresh(self) -> None:
        """Status and picture first (what the learner looks at), then the controls and
        the detail tabs."""
        s = self.session
        self.w_status.value = status_html(s.status_kind, s.status_text)
        self._draw()
        self._sync_controls()
        self.w_summary.value = f"<div>{html.escape(s.domain_summary())}</div>"
        self.w_score.value = self._score_html()
        self.w_trace.value = trace_html(s.last_outcome)
        self.w_changes.value = self._changes_html()
        self.w_frame_map.value = frame_map_html(s.frame_rows(), s.run.xen.machine.nr_frames)
        self.w_log.value = log_html(s.log)
        self._show_bits()
        self._send_replay()

    def _score_html(self) -> str:
        if not self.predict_mode:
            return ""
        right, asked = self.score
        colour = "#1b5e20" if self.last_reveal.startswith("right") else "#b71c1c"
        reveal = (f' — <span style="color:{colour}">{html.escape(self.last_reveal)}</span>'
                  if self.last_reveal else "")
        return f"<b>score {right}/{asked}</b>{reveal}"

    def _sync_controls(self) -> None:
        s = self.session
        self._syncing = True
        try:
            self.w_bitness.value = s.bitness
            self.w_profile.value = s.profile
            self.w_vcpu0.value = s.vcpu0_initialised
            valid = assist_validity(s.profile, s.bitness)
            why = []
            for name, cb in self.w_assists.items():
                cb.value = name in s.vm_assists
                cb.disabled = bool(valid[name])
                cb.tooltip = (f"{name}: {valid[name]}" if valid[name]
                              else VM_ASSIST_HELP.get(name, ""))
                if valid[name]:
                    why.append(f"<i>{name}</i> is greyed out: {html.escape(valid[name])}")
            self.w_assist_why.value = ('<div style="font-size:11px;line-height:1.25">'
                                       + "<br>".join(why) + "</div>")
            names = list(s.frames)
            for dd in (self.w_table, self.w_op_frame, self.w_free_frame):
                keep = dd.value
                dd.options = names
                dd.value = keep if keep in names else self._default_frame(names)
            self.w_target.options = names
            self.w_guess_frame.options = [NO_FRAME, *names]
            if self.guess is None:
                self.w_guess_result.value = NO_GUESS
                self.w_guess_frame.value = NO_FRAME
            self.w_predict_box.layout.display = "" if self.predict_mode else "none"
            self.w_position.value = (f"step {s.position}/{len(s.steps)}" if s.steps
                                     else "no steps")
            shown = self.example_loaded if self.example_loaded in examples() else None
            self.w_example.value = shown
            self.w_pane2.layout.display = "" if self.compare else "none"
            self.w_compare_profile.layout.display = "" if self.compare == "profile" else "none"
            if self.compare == "profile":
                self.w_compare_profile.value = s.compare_against()
            doms = s.domain_names
            self.w_as_domain.options = [DEFAULT_ISSUER, *((n, n) for n in doms)]
            self.w_as_domain.value = s.acting_domain if s.acting_domain in doms else ""
            self.w_view_domain.options = [FOLLOW, *((n, n) for n in doms)]
            self.w_view_domain.value = s.view_domain if s.view_domain in doms else ""
            self.w_as_domain.layout.display = "" if doms else "none"
            self.w_view_domain.layout.display = "" if doms else "none"
        finally:
            self._syncing = False

    def _default_frame(self, names: list[str]) -> str | None:
        """A new dropdown value: the top-level table if one is meant, else the first."""
        if not names:
            return None
        top = abi_for(self.session.bitness).top_level
        roles = self.session.doc.roles
        return next((n for n in names if roles.get(n) == top), names[0])

    def _draw(self) -> None:
        s = self.session
        try:
            self.picture = tables_picture(s)
            self.render_error = ""
        except Exception as err:  # noqa: BLE001 - a picture must never break the lab
            self.picture = None
            self.render_error = f"{type(err).__name__}: {err}"
        self._show(self.w_picture, self.picture, s.run, replay=True)
        self.w_picture_label.value = (self._label_html(s.run, self.picture)
                                      if self.compare else "")
        if self.compare:
            self._draw_compare()

    def _side_label(self, run: ScenarioRun) -> str:
        last = run.steps[-1] if run.steps else None
        result = "" if last is None else (f": step {last.index} → " + (
            ("holds" if last.held else "does not hold") if last.is_check else last.result))
        who = self.session.picture_domain(run)
        bits = (run.domains[who] if who in run.domains else run.guest).domain.bitness
        return (f"Xen {run.profile}, " + (f"{who}'s tables, " if who else "")
                + f"{bits}-bit PV{result}")

    def _draw_compare(self) -> None:
        s = self.session
        try:
            got = s.compare_run(self.compare)
        except PvlabError as err:
            self.w_picture2_label.value = (f'<b style="color:#7a4f00">cannot run it: '
                                           f"{html.escape(err.message)}</b>")
            return
        if got is None:
            return
        _label, run = got
        view = tables_picture(s, run, changes=False)
        self._show(self.w_picture2, view, run, replay=False)
        self.w_picture2_label.value = self._label_html(run, view)

    def _label_html(self, run: ScenarioRun, view: Any | None) -> str:
        """A compare side's label: red when its last step failed or its state is dangerous
        (a pre-xsa-NNN profile's exploit: `ok`, and the `⚠ danger` count after it)."""
        found = dangers_in(view.model) if view is not None else []
        bad = bool(found) or bool(run.steps and not run.steps[-1].outcome.ok)
        colour = "#b71c1c" if bad else "#1b5e20"
        warn = f" — ⚠ {len(found)} danger(s)" if found else ""
        return (f'<b style="color:{colour}">{html.escape(self._side_label(run) + warn)}'
                "</b>")

    def _show(self, widget: Any, view: Any | None, run: ScenarioRun, *, replay: bool) -> None:
        s = self.session
        if not HAVE_ANYWIDGET or not hasattr(widget, "show"):
            widget.value = picture_html(view, s) + (
                f"<p>(picture failed: {html.escape(self.render_error)})</p>"
                if self.render_error else "")
            return
        names, bits = picture_names(run), picture_bits(run)
        if view is None:
            widget.show(picture_html(view, s), names=names, bits=bits)
            return
        self.replay = self._replay() if replay else None
        final = inline_svg(view.svg(backend=self._backend(view)))
        # The state after the action goes to the browser at once; the replay frames
        # follow at the end of the refresh (`_send_replay`), so a click paints quickly.
        caption = "after the step: what changed" if self.replay is not None else ""
        widget.show(final, names=names, bits=bits, caption=caption)
        if self.replay is not None:
            self._pending = (widget, view, final, names, bits)

    def _send_replay(self) -> None:
        """Send the replay frames of the step just drawn (one dot run for all of them)."""
        pending, self._pending = self._pending, None
        if pending is None or self.replay is None:
            return
        widget, view, final, names, bits = pending
        views = [View(f.model, f.caption) for f in self.replay.frames]
        svgs = [inline_svg(x) for x in svg_many(views, backend=self._backend(view))]
        svgs.append(final)
        captions = [*self.replay.captions(), "after the step: what changed"]
        phases = [f.phase for f in self.replay.frames] + ["after"]
        widget.show_replay(svgs, captions, phases, names=names, bits=bits,
                           start=len(svgs) - 1)

    @staticmethod
    def _backend(view: Any) -> str | None:
        """None (the render package's choice) unless the picture is large."""
        return "fallback" if len(view.model.nodes) > DOT_NODE_LIMIT else None

    def _replay(self) -> Any | None:
        """The replay of the step just applied (None if the action was no hypercall)."""
        s = self.session
        last = s.run.steps[-1] if s.run.steps else None
        if (last is None or last.is_check or not last.outcome.events
                or len(last.outcome.events) > REPLAY_LIMIT):
            return None
        before = s.run_before_last_step()
        if before is None:
            return None
        return build_replay(snapshot(before.xen, before.guest), snapshot(s.run.xen, s.run.guest),
                     last.outcome, names={m: n for n, m in s.run.frames.items()},
                     hints=lab_hints(s), title=picture_title(s) + " — replay")

    def _changes_html(self) -> str:
        view = self.picture
        if view is None or getattr(view.model, "kind", "") != "tables":
            return ""
        text = view.text()
        return f'<pre class="lab-changes-text" style="margin:0;line-height:1.35">' \
               f"{html.escape(text)}</pre>"

    def _show_bits(self) -> None:
        s = self.session
        table = self.w_table.value
        parts = []
        if table and table in s.frames:
            mfn = s.frames[table]
            index = int(self.w_index.value)
            value = s.run.xen.machine.read_entry(mfn, index)
            wrote = guest_written(s.run).get((mfn, index))
            added = xen_added_flags(wrote, value) if wrote is not None else 0
            parts.append(entry_ruler_html(value, where=f"{index} of {table}", added=added))
            parts.append(cr3_ruler_html(mfn, s.bitness))
        else:
            parts.append("<i>choose a table (or click a frame in the picture) to see its "
                         "entry and CR3 bits</i>")
        self.w_bits.value = "".join(parts)
