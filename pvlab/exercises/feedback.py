# SPDX-License-Identifier: MIT
"""The result of `pvlab.check`: right or not, what is wrong, and a hint.

Shown as Markdown/HTML in a notebook and as plain text elsewhere; `bool(fb)` is `fb.ok`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Feedback:
    """What a check decided about one answer."""

    exercise: str
    ok: bool
    message: str
    hint: str = ""
    #: how many wrong tries this exercise has had in this process (0 when right at once)
    tries: int = 0
    #: the explanation shown once the answer is right
    explanation: str = ""

    def __bool__(self) -> bool:
        return self.ok

    @property
    def headline(self) -> str:
        return "Correct" if self.ok else "Not yet"

    def __str__(self) -> str:
        lines = [f"{self.exercise}: {self.headline}. {self.message}"]
        if self.hint:
            lines.append(f"Hint {min(self.tries, 3)}/3: {self.hint}")
        if self.explanation:
            lines.append(self.explanation)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        mark = "✅" if self.ok else "❌"
        out = [f"{mark} **{self.exercise}: {self.headline}.** {self.message}"]
        if self.hint:
            out.append(f"> 💡 *Hint {min(self.tries, 3)}/3:* {self.hint}")
        if self.explanation:
            out.append(self.explanation)
        return "\n\n".join(out)

    def _repr_html_(self) -> str:
        colour = "#1b7f3b" if self.ok else "#b3261e"
        mark = "&#x2705;" if self.ok else "&#x274C;"
        parts = [f'<div class="pvlab-feedback" style="border-left:4px solid {colour};'
                 f'padding:4px 8px"><p>{mark} <b>{html.escape(self.exercise)}: '
                 f'{self.headline}.</b> {html.escape(self.message)}</p>']
        if self.hint:
            parts.append(f"<p>&#x1F4A1; <i>Hint {min(self.tries, 3)}/3:</i> "
                         f"{html.escape(self.hint)}</p>")
        if self.explanation:
            parts.append(f"<p>{html.escape(self.explanation)}</p>")
        parts.append("</div>")
        return "".join(parts)
