# SPDX-License-Identifier: MIT
"""Exercises with instant checks, and a seeded problem generator.

```python
import pvlab
pvlab.exercises.show("walk-2level")          # the question
pvlab.check("walk-2level", 0x5123)           # feedback, with a hint when wrong
p = pvlab.generate("walk", seed=7, difficulty="pencil")
print(p.text(answer=True))
```
"""

from __future__ import annotations

from pvlab.exercises.catalogue import EXERCISES, Exercise, exercise_ids, show
from pvlab.exercises.checking import check, grade, reset_hints
from pvlab.exercises.feedback import Feedback
from pvlab.exercises.generator import generate, generator_kinds
from pvlab.exercises.kinds.predict import reasons
from pvlab.exercises.problem import DIFFICULTIES, Problem

__all__ = ["DIFFICULTIES", "EXERCISES", "Exercise", "Feedback", "Problem", "check",
           "exercise_ids", "generate", "generator_kinds", "grade", "reasons", "reset_hints",
           "show"]
