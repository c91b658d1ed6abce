# SPDX-License-Identifier: MIT
"""`pvlab explain`: from a line of Xen's console to the rule, the Xen function and the fix.

Core-side: nothing here prints; :mod:`pvlab.commands.explain` does.
"""

from .lines import Coverage, Decoded, Explanation, coverage, explain_line, explain_text
from .skeleton import scenario_for

__all__ = ["Coverage", "Decoded", "Explanation", "coverage", "explain_line", "explain_text",
           "scenario_for"]
