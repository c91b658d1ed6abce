# SPDX-License-Identifier: MIT
"""`Lab`: the scenario lab as an ipywidgets app.

```python
from pvlab.ui import Lab
lab = Lab()                              # display(lab) or leave it last in a cell
lab.set_bitness(32); lab.allocate("l3", above="4GiB"); lab.allocate("l2")
lab.set_entry("l3", 3, "l2", "P"); lab.set_vcpu0_initialised(True)
lab.pin("l3", 3)                         # -> Outcome; lab.status_text says -ERANGE and why
```

Each widget handler calls one :class:`~pvlab.ui.session.LabSession` action and
re-renders; the same actions are methods of `Lab`, so a test or a notebook cell drives
the app exactly as clicks do. Every widget carries a stable CSS class (`lab-bitness`,
`lab-assist-pae_extended_cr3`, `lab-pin`, `lab-status`, `lab-picture`, ...; see
`docs/lab.md`) for browser tests. Results, errno and the explained trace go to the
status, trace and log areas, because an exception in a widget callback is never seen.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import ipywidgets as w

from pvlab.scenario import ScenarioRun
from pvlab.trace import Outcome
from pvlab.xen.domain import VM_ASSIST_HELP, VM_ASSISTS
from pvlab.xen.profiles import PROFILES

from .examples import examples
from .pictures import (
    frame_map_html,
    log_html,
    picture_html,
    status_html,
    tables_picture,
    trace_html,
)
from .session import FrameRef, LabSession, assist_validity

WHERE = {"anywhere": "anywhere", "below 4 GiB": "below", "above 4 GiB": "above",
         "at MFN": "mfn"}
LEVELS = [("as its role", 0), ("L1", 1), ("L2", 2), ("L3", 3), ("L4", 4)]
ROLES = [("-", 0), ("L1", 1), ("L2", 2), ("L3", 3), ("L4", 4)]


def _cls(widget: w.DOMWidget, name: str) -> w.DOMWidget:
    widget.add_class(name)
    return widget


def _button(label: str, css: str, tip: str, style: str = "") -> w.Button:
    b = w.Button(description=label, tooltip=tip, button_style=style,
                 layout=w.Layout(width="auto"))
    return _cls(b, css)


class Lab:
    """The scenario lab: controls, picture, status, trace and log over a `LabSession`."""

    def __init__(self, *, profile: str | None = None, bitness: int = 64,
                 example: str | None = None) -> None:
        self.session = LabSession(profile=profile, bitness=bitness)
        self._syncing = False
        self.picture: Any | None = None
        self.render_error: str = ""
        self._build_widgets()
        if example is not None:
            self.session.load_example(example)
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
    def _act(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - a callback's exception is never seen
            self.session._say("error", f"internal error: {type(err).__name__}: {err}")
            result = None
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
        return self._act(self.session.mmu_update, table, index, target, flags, value=value)

    def pin(self, frame: FrameRef, level: int | None = None) -> Outcome | None:
        return self._act(self.session.pin, frame, level)

    def unpin(self, frame: FrameRef) -> Outcome | None:
        return self._act(self.session.unpin, frame)

    def new_baseptr(self, frame: FrameRef, *, vcpu: int = 0) -> Outcome | None:
        return self._act(self.session.new_baseptr, frame, vcpu=vcpu)

    def initialise_vcpu0(self, cr3: FrameRef,
                         vm_assists: Iterable[str] | None = None) -> Outcome | None:
        return self._act(self.session.initialise_vcpu0, cr3, vm_assists)

    def vcpu_reset(self, vcpu: int = 0) -> Outcome | None:
        return self._act(self.session.vcpu_reset, vcpu)

    def vm_assist(self, cmd: str, name: str) -> Outcome | None:
        return self._act(self.session.vm_assist, cmd, name)

    def add_step(self, step: dict[str, Any]) -> Outcome | None:
        return self._act(self.session.add_step, step)

    def undo(self) -> bool:
        return self._act(self.session.undo)

    def step(self) -> bool:
        return self._act(self.session.step)

    def back(self) -> bool:
        return self._act(self.session.back)

    def run_to_end(self) -> bool:
        return self._act(self.session.run_to_end)

    def reset(self) -> bool:
        return self._act(self.session.reset)

    def load(self, path_or_text: str | Path) -> bool:
        return self._act(self.session.load, path_or_text)

    def load_example(self, name: str) -> bool:
        return self._act(self.session.load_example, name)

    def export_yaml(self, path: str | Path | None = None) -> str:
        text = self.session.export_yaml(path)
        self._show_export(text)
        return text

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self) -> None:
        s = self.session
        self.w_title = w.HTML("<b>pvlab scenario lab</b> — a Xen PV guest's pagetables, "
                              "checked as Xen checks them")
        self.w_bitness = _cls(w.ToggleButtons(
            options=[("64-bit PV", 64), ("32-bit PV", 32)], value=s.bitness,
            description="guest", tooltips=["a 64-bit PV guest (4-level paging)",
                                           "a 32-bit PAE guest on 64-bit Xen (compat)"],
            style={"button_width": "90px"}), "lab-bitness")
        self.w_profile = _cls(w.Dropdown(
            options=[(f"{n} — {p.description[:60]}", n) for n, p in PROFILES.items()],
            value=s.profile, description="Xen", layout=w.Layout(width="430px")), "lab-profile")
        self.w_vcpu0 = _cls(w.Checkbox(value=False, description="vCPU 0 initialised at start",
                                       indent=False), "lab-vcpu0")
        self.w_assists: dict[str, w.Checkbox] = {}
        for name in VM_ASSISTS:
            cb = w.Checkbox(value=False, description=name, indent=False,
                            tooltip=VM_ASSIST_HELP.get(name, ""),
                            layout=w.Layout(width="auto"))
            self.w_assists[name] = _cls(cb, f"lab-assist-{name}")
        self.w_assist_why = _cls(w.HTML(), "lab-assist-why")

        # frames
        self.w_frame_name = _cls(w.Text(placeholder="name (e.g. l3)", description="frame",
                                        layout=w.Layout(width="200px")), "lab-frame-name")
        self.w_frame_role = _cls(w.Dropdown(options=ROLES, value=0, description="make it",
                                            layout=w.Layout(width="150px")), "lab-frame-role")
        self.w_where = _cls(w.Dropdown(options=list(WHERE), value="anywhere",
                                       layout=w.Layout(width="130px")), "lab-alloc-where")
        self.w_alloc_mfn = _cls(w.Text(placeholder="MFN, e.g. 0x100200",
                                       layout=w.Layout(width="150px")), "lab-alloc-mfn")
        self.b_allocate = _button("allocate", "lab-allocate", "allocate a guest frame")
        self.w_free_frame = _cls(w.Dropdown(options=[], layout=w.Layout(width="120px")),
                                 "lab-free-frame")
        self.b_free = _button("free", "lab-free", "give the frame back (if nothing uses it)")
        self.w_frame_map = _cls(w.HTML(), "lab-frame-map")

        # entries
        self.w_table = _cls(w.Dropdown(options=[], description="table",
                                       layout=w.Layout(width="170px")), "lab-entry-table")
        self.w_index = _cls(w.BoundedIntText(value=0, min=0, max=511, description="index",
                                             layout=w.Layout(width="140px")), "lab-entry-index")
        self.w_target = _cls(w.Combobox(options=[], placeholder="frame, MFN or empty",
                                        description="to", ensure_option=False,
                                        layout=w.Layout(width="200px")), "lab-entry-target")
        self.w_flags = _cls(w.Text(value="P", description="flags",
                                   layout=w.Layout(width="180px")), "lab-entry-flags")
        self.b_write = _button("write", "lab-write",
                               "the guest writes the entry itself (no hypercall)")
        self.b_mmu_update = _button("mmu_update", "lab-mmu-update",
                                    "MMU_NORMAL_PT_UPDATE: Xen checks the new entry")

        # operations
        self.w_op_frame = _cls(w.Dropdown(options=[], description="frame",
                                          layout=w.Layout(width="170px")), "lab-op-frame")
        self.w_op_level = _cls(w.Dropdown(options=LEVELS, value=0, description="level",
                                          layout=w.Layout(width="180px")), "lab-op-level")
        self.b_pin = _button("pin", "lab-pin", "MMUEXT_PIN_Ln_TABLE: promote and pin",
                             "primary")
        self.b_unpin = _button("unpin", "lab-unpin", "MMUEXT_UNPIN_TABLE")
        self.b_baseptr = _button("new baseptr", "lab-new-baseptr",
                                 "MMUEXT_NEW_BASEPTR: load it as vCPU 0's CR3")
        self.b_vcpu_init = _button("initialise vCPU 0", "lab-vcpu-init",
                                   "XEN_DOMCTL_setvcpucontext: CR3 = this frame, VM-assists "
                                   "as ticked")

        # scenario
        self.w_example = _cls(w.Dropdown(options=examples(), description="example",
                                         layout=w.Layout(width="300px")), "lab-example")
        self.b_load = _button("load", "lab-load", "load the bundled example")
        self.w_upload = _cls(w.FileUpload(accept=".yaml,.yml", multiple=False,
                                          description="load file"), "lab-upload")
        self.b_back = _button("◀ back", "lab-back", "go back one step")
        self.b_step = _button("step ▶", "lab-step", "apply the next step")
        self.b_undo = _button("undo", "lab-undo", "take back the last action", "warning")
        self.b_export = _button("export YAML", "lab-export",
                                "the current state as a scenario file for pvlab run")
        self.w_position = _cls(w.HTML(), "lab-position")
        self.w_yaml = _cls(w.Textarea(layout=w.Layout(width="98%", height="160px",
                                                      display="none")), "lab-yaml")
        self.w_download = _cls(w.HTML(), "lab-download")

        # outputs
        self.w_status = _cls(w.HTML(), "lab-status")
        self.w_summary = _cls(w.HTML(), "lab-summary")
        self.w_picture = _cls(w.HTML(layout=w.Layout(overflow="auto", max_height="640px")),
                              "lab-picture")
        self.w_trace = _cls(w.HTML(), "lab-trace")
        self.w_log = _cls(w.HTML(layout=w.Layout(max_height="240px", overflow="auto")),
                          "lab-log")

        # wiring
        self.w_bitness.observe(self._on_bitness, names="value")
        self.w_profile.observe(self._on_profile, names="value")
        self.w_vcpu0.observe(self._on_vcpu0, names="value")
        for name, cb in self.w_assists.items():
            cb.observe(self._assist_handler(name), names="value")
        self.w_upload.observe(self._on_upload, names="value")
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
        }
        for button, fn in clicks.items():
            button.on_click(self._click(fn))

        box = w.Layout(border="1px solid #ddd", padding="4px", margin="2px 0")
        controls = w.VBox([
            self.w_title,
            w.HBox([self.w_bitness, self.w_profile]),
            w.HBox([self.w_vcpu0, w.HTML("&nbsp;<b>VM-assists:</b>")]),
            w.HBox(list(self.w_assists.values()), layout=w.Layout(flex_flow="row wrap")),
            self.w_assist_why,
            w.VBox([w.HTML("<b>Frames</b>"),
                    w.HBox([self.w_frame_name, self.w_frame_role, self.w_where,
                            self.w_alloc_mfn, self.b_allocate]),
                    w.HBox([self.w_free_frame, self.b_free])], layout=box),
            w.VBox([w.HTML("<b>Entry</b>"),
                    w.HBox([self.w_table, self.w_index, self.w_target, self.w_flags]),
                    w.HBox([self.b_write, self.b_mmu_update])], layout=box),
            w.VBox([w.HTML("<b>Hypercalls</b>"),
                    w.HBox([self.w_op_frame, self.w_op_level]),
                    w.HBox([self.b_pin, self.b_unpin, self.b_baseptr, self.b_vcpu_init])],
                   layout=box),
            w.VBox([w.HTML("<b>Scenario</b>"),
                    w.HBox([self.w_example, self.b_load, self.w_upload]),
                    w.HBox([self.b_back, self.b_step, self.w_position, self.b_undo,
                            self.b_export, self.w_download]),
                    self.w_yaml], layout=box),
        ])
        self.widget = _cls(w.VBox([
            controls, self.w_status, self.w_summary, self.w_picture,
            w.HTML("<b>Trace</b> (each check, what it decided, the Xen function)"),
            self.w_trace, w.HTML("<b>Frame map</b>"), self.w_frame_map,
            w.HTML("<b>Log</b>"), self.w_log]), "lab-app")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ handlers
    def _click(self, fn: Callable[[], Any]) -> Callable[[w.Button], None]:
        def handler(_button: w.Button) -> None:
            self._act(fn)
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
        got = self.session.allocate(name, level=level, **kwargs)
        if got is not None:
            self.w_frame_name.value = ""
            self.w_frame_role.value = 0
            for dd in (self.w_table, self.w_op_frame):
                dd.options = list(self.session.frames)
                dd.value = got

    def _on_free(self) -> None:
        if self.w_free_frame.value:
            self.session.free(self.w_free_frame.value)

    def _on_entry(self, hypercall: bool) -> None:
        table = self.w_table.value or ""
        target: str | None = self.w_target.value.strip() or None
        fn = self.session.mmu_update if hypercall else self.session.set_entry
        fn(table, int(self.w_index.value), target, self.w_flags.value or "0")

    def _on_pin(self) -> None:
        level = self.w_op_level.value or None
        self.session.pin(self.w_op_frame.value or "", level)

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0]
        text = bytes(f["content"]).decode("utf-8", errors="replace")
        self.load(text if "\n" in text else text + "\n")

    def _show_export(self, text: str) -> None:
        self.w_yaml.value = text
        self.w_yaml.layout.display = ""
        data = base64.b64encode(text.encode()).decode()
        name = html.escape(self.session.doc.name) + ".yaml"
        self.w_download.value = (f'<a download="{name}" href="data:text/yaml;base64,{data}">'
                                 f"download {name}</a>")

    # ------------------------------------------------------------------ re-render
    def _refresh(self) -> None:
        s = self.session
        self._syncing = True
        try:
            self.w_bitness.value = s.bitness
            self.w_profile.value = s.profile
            self.w_vcpu0.value = s.doc.vcpu0_initialised
            valid = assist_validity(s.profile, s.bitness)
            why = []
            for name, cb in self.w_assists.items():
                cb.value = name in s.doc.vm_assists
                cb.disabled = bool(valid[name])
                cb.tooltip = (f"{name}: {valid[name]}" if valid[name]
                              else VM_ASSIST_HELP.get(name, ""))
                if valid[name]:
                    why.append(f"<i>{name}</i> is greyed out: {html.escape(valid[name])}")
            self.w_assist_why.value = "<br>".join(why)
            names = list(s.frames)
            for dd in (self.w_table, self.w_op_frame, self.w_free_frame):
                keep = dd.value
                dd.options = names
                dd.value = keep if keep in names else (names[-1] if names else None)
            self.w_target.options = names
            self.w_position.value = (f"step {s.position}/{len(s.steps)}" if s.steps
                                     else "no steps")
        finally:
            self._syncing = False
        self.w_status.value = status_html(s.status_kind, s.status_text)
        self.w_summary.value = f"<div>{html.escape(s.domain_summary())}</div>"
        try:
            self.picture = tables_picture(s)
            self.render_error = ""
        except Exception as err:  # noqa: BLE001 - a picture must never break the lab
            self.picture = None
            self.render_error = f"{type(err).__name__}: {err}"
        self.w_picture.value = picture_html(self.picture, s) + (
            f"<p>(picture failed: {html.escape(self.render_error)})</p>"
            if self.render_error else "")
        self.w_trace.value = trace_html(s.last_outcome)
        self.w_frame_map.value = frame_map_html(s.frame_rows(), s.run.xen.machine.nr_frames)
        self.w_log.value = log_html(s.log)
