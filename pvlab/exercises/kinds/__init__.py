# SPDX-License-Identifier: MIT
"""The problem kinds; importing this package registers them."""

from pvlab.exercises.kinds import cr3, l3check, predict, tasks, walk

__all__ = ["cr3", "l3check", "predict", "tasks", "walk"]
