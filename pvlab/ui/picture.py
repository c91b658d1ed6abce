# SPDX-License-Identifier: MIT
"""The lab's picture as a widget (anywidget): scaled to fit, zoom and pan, click, hover.

The SVG (or every frame of a promotion replay) goes to the browser once; fitting, zoom,
pan, the replay slider and the play button all run in the browser, without a kernel
round trip. Clicking a frame sets :attr:`PictureWidget.selected` to its frame name (the
lab then acts on it); hovering an entry row (`[3] → l2 · P`) shows its bits from
:attr:`PictureWidget.bits`. Without the `anywidget` package the lab falls back to an
HTML widget holding the same SVG (no clicks, no browser-side replay).
"""

from __future__ import annotations

import importlib.util
from typing import Any

HAVE_ANYWIDGET = importlib.util.find_spec("anywidget") is not None

_ESM = r"""
function render({ model, el }) {
  el.classList.add('pv-pic');
  const bar = document.createElement('div'); bar.className = 'pv-bar';
  const mk = (label, cls, tip) => { const b = document.createElement('button');
    b.textContent = label; b.className = 'pv-btn ' + cls; b.title = tip; bar.appendChild(b);
    return b; };
  const zout = mk('−', 'pv-zoom-out', 'zoom out (or Ctrl + wheel)');
  const fit = mk('fit', 'pv-fit', 'scale the whole picture into the pane');
  const zin = mk('+', 'pv-zoom-in', 'zoom in (or Ctrl + wheel); drag to pan');
  const rep = document.createElement('span'); rep.className = 'pv-replay'; bar.appendChild(rep);
  const prev = document.createElement('button'); prev.textContent = '◀';
  prev.className = 'pv-btn pv-prev'; prev.title = 'previous event';
  const play = document.createElement('button'); play.textContent = '▶ replay';
  play.className = 'pv-btn pv-play'; play.title = 'play the trace event by event';
  const next = document.createElement('button'); next.textContent = '▶';
  next.className = 'pv-btn pv-next'; next.title = 'next event';
  const slider = document.createElement('input'); slider.type = 'range';
  slider.className = 'pv-slider'; slider.min = 0;
  const count = document.createElement('span'); count.className = 'pv-count';
  rep.append(prev, play, next, slider, count);
  const cap = document.createElement('div'); cap.className = 'pv-caption';
  const view = document.createElement('div'); view.className = 'pv-view';
  const stage = document.createElement('div'); stage.className = 'pv-stage';
  view.appendChild(stage);
  const tip = document.createElement('div'); tip.className = 'pv-tip'; view.appendChild(tip);
  el.append(bar, cap, view);

  let zoom = 1, px = 0, py = 0, timer = null, idx = 0;
  const apply = () => { stage.style.transform = `translate(${px}px, ${py}px) scale(${zoom})`;
    el.dataset.zoom = zoom.toFixed(2); };
  const names = () => model.get('names') || {};
  function nodeId(g) { return g.id || ''; }
  function paint() {
    const svgs = model.get('svgs') || [];
    const caps = model.get('captions') || [];
    const phases = model.get('phases') || [];
    idx = Math.max(0, Math.min(idx, svgs.length - 1));
    stage.innerHTML = svgs.length ? svgs[idx] : '';
    const svg = stage.querySelector('svg');
    if (svg) { svg.removeAttribute('width'); svg.removeAttribute('height');
      svg.setAttribute('preserveAspectRatio', 'xMidYMin meet');
      svg.style.width = '100%'; svg.style.height = '100%'; svg.style.display = 'block'; }
    const sel = model.get('selected');
    stage.querySelectorAll('g.node').forEach(g => {
      const name = names()[nodeId(g)];
      if (name) { g.classList.add('pv-frame'); g.dataset.frame = name; }
      if (name && name === sel) g.classList.add('pv-selected');
    });
    const many = svgs.length > 1;
    rep.style.display = many ? '' : 'none';
    slider.max = Math.max(0, svgs.length - 1); slider.value = idx;
    // the events are numbered as the captions number them ("event k/N"); the frame
    // after the last event is the state after the step, not an event of its own
    const events = phases.filter(p => p !== 'after').length;
    count.textContent = !many ? '' : (phases[idx] === 'after' ? `after ${events} events`
      : `${idx + 1}/${events}`);
    cap.textContent = caps[idx] || '';
    cap.className = 'pv-caption pv-' + (phases[idx] || 'none');
    el.dataset.frame = String(idx + 1); el.dataset.phase = phases[idx] || '';
    requestAnimationFrame(() => { el.dataset.painted = String(performance.now()); });
  }
  function show(i, sync) { idx = i; paint();
    if (sync) { model.set('index', idx); model.save_changes(); } }
  slider.addEventListener('input', () => show(+slider.value, true));
  prev.addEventListener('click', () => show(Math.max(0, idx - 1), true));
  next.addEventListener('click', () => show(idx + 1, true));
  play.addEventListener('click', () => {
    if (timer) { clearInterval(timer); timer = null; play.textContent = '▶ replay'; return; }
    const n = (model.get('svgs') || []).length;
    if (idx >= n - 1) show(0, false);
    play.textContent = '❚❚ pause';
    timer = setInterval(() => { if (idx >= n - 1) { clearInterval(timer); timer = null;
      play.textContent = '▶ replay'; model.set('index', idx); model.save_changes(); return; }
      show(idx + 1, false); }, model.get('interval') || 800);
  });
  zin.addEventListener('click', () => { zoom = Math.min(8, zoom * 1.25); apply(); });
  zout.addEventListener('click', () => { zoom = Math.max(0.25, zoom / 1.25); apply(); });
  fit.addEventListener('click', () => { zoom = 1; px = 0; py = 0; apply(); });
  view.addEventListener('wheel', (e) => { if (!e.ctrlKey) return; e.preventDefault();
    zoom = Math.max(0.25, Math.min(8, zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1))); apply(); },
    { passive: false });
  let drag = null;
  view.addEventListener('mousedown', (e) => { drag = { x: e.clientX - px, y: e.clientY - py,
    moved: false }; });
  window.addEventListener('mousemove', (e) => { if (!drag) return;
    const nx = e.clientX - drag.x, ny = e.clientY - drag.y;
    if (Math.abs(nx - px) + Math.abs(ny - py) > 3) drag.moved = true;
    if (drag.moved) { px = nx; py = ny; apply(); } });
  window.addEventListener('mouseup', () => { setTimeout(() => { drag = null; }, 0); });
  stage.addEventListener('click', (e) => {
    if (drag && drag.moved) return;
    const g = e.target.closest('g.node'); if (!g) return;
    const name = names()[nodeId(g)]; if (!name) return;
    model.set('selected', name); model.save_changes();
    stage.querySelectorAll('g.pv-selected').forEach(x => x.classList.remove('pv-selected'));
    g.classList.add('pv-selected');
  });
  stage.addEventListener('mousemove', (e) => {
    const t = e.target.closest('text'); const g = e.target.closest('g.node');
    const m = t && g ? /\[(\d+)\]/.exec(t.textContent) : null;
    const text = m ? (model.get('bits') || {})[`${nodeId(g)}/${m[1]}`] : null;
    if (!text) { tip.style.display = 'none'; return; }
    const r = view.getBoundingClientRect();
    tip.textContent = text; tip.style.display = 'block';
    tip.style.left = (e.clientX - r.left + 12) + 'px';
    tip.style.top = (e.clientY - r.top + 12) + 'px';
  });
  stage.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
  const fresh = () => { idx = model.get('index') || 0; paint(); };
  model.on('change:svgs', fresh); model.on('change:index', () => {
    if (!timer && model.get('index') !== idx) { idx = model.get('index'); paint(); } });
  model.on('change:selected', paint); model.on('change:names', paint);
  const height = () => { el.style.setProperty('--pv-height', model.get('height')); };
  model.on('change:height', height); height();
  fresh(); apply();
  return () => { if (timer) clearInterval(timer); };
}
export default { render };
"""

_CSS = r"""
.pv-pic { display: flex; flex-direction: column; width: 100%; min-width: 0;
  font-family: Helvetica, DejaVu Sans, Arial, sans-serif; }
.pv-bar { display: flex; gap: 4px; align-items: center; flex-wrap: wrap; padding: 2px 0; }
.pv-btn { padding: 1px 8px; border: 1px solid #bbb; background: #f7f7f7; border-radius: 3px;
  cursor: pointer; font-size: 13px; }
.pv-replay { display: inline-flex; gap: 4px; align-items: center; margin-left: 12px; }
.pv-slider { width: 220px; }
.pv-caption { font-size: 13px; line-height: 1.3; min-height: 1.3em; margin: 2px 0; }
.pv-caption.pv-fail { color: #c62828; font-weight: bold; }
.pv-caption.pv-rollback { color: #e65100; font-weight: bold; }
.pv-view { position: relative; overflow: hidden; height: var(--pv-height, 560px);
  border: 1px solid #ddd; background: #fff; cursor: grab; }
.pv-stage { width: 100%; height: 100%; transform-origin: 0 0; }
.pv-frame { cursor: pointer; }
.pv-frame:hover > rect, .pv-frame:hover > polygon { stroke: #1565c0 !important; }
.pv-selected > rect, .pv-selected > polygon { stroke: #1565c0 !important;
  stroke-width: 4 !important; }
.pv-tip { position: absolute; display: none; background: #263238; color: #fff;
  font: 12px/1.35 monospace; padding: 4px 6px; border-radius: 3px; white-space: pre;
  pointer-events: none; z-index: 5; }
"""


if HAVE_ANYWIDGET:
    import anywidget
    import traitlets

    class PictureWidget(anywidget.AnyWidget):
        """The picture pane: one SVG, or the frames of a replay, shown in the browser."""

        _esm = _ESM
        _css = _CSS
        svgs = traitlets.List(traitlets.Unicode()).tag(sync=True)
        captions = traitlets.List(traitlets.Unicode()).tag(sync=True)
        phases = traitlets.List(traitlets.Unicode()).tag(sync=True)
        index = traitlets.Int(0).tag(sync=True)
        #: SVG node id (`m100000`) -> frame name, for clicks
        names = traitlets.Dict().tag(sync=True)
        #: "node id/entry index" -> the entry's bits, for hovering
        bits = traitlets.Dict().tag(sync=True)
        #: the frame the learner clicked last
        selected = traitlets.Unicode("").tag(sync=True)
        height = traitlets.Unicode("560px").tag(sync=True)
        interval = traitlets.Int(800).tag(sync=True)

        def show(self, svg: str, *, names: dict[str, str], bits: dict[str, str],
                 caption: str = "") -> None:
            with self.hold_sync():
                self.names, self.bits = names, bits
                self.captions, self.phases = [caption], [""]
                self.index = 0
                self.svgs = [svg]

        def show_replay(self, svgs: list[str], captions: list[str], phases: list[str], *,
                        names: dict[str, str], bits: dict[str, str], start: int = 0) -> None:
            with self.hold_sync():
                self.names, self.bits = names, bits
                self.captions, self.phases = captions, phases
                self.index = start
                self.svgs = svgs

        @property
        def value(self) -> str:
            """The SVG shown now (what `ipywidgets.HTML.value` held before)."""
            return self.svgs[self.index] if self.svgs else ""

def make_picture(height: str = "560px") -> Any:
    """A PictureWidget, or an HTML widget when anywidget is missing."""
    if HAVE_ANYWIDGET:
        return PictureWidget(height=height)
    import ipywidgets as w

    return w.HTML(layout=w.Layout(overflow="auto", height=height))
