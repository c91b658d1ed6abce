# SPDX-License-Identifier: MIT
"""The scenario language: load and validate YAML files, run them step by step."""

from .model import (
           EntrySpec,
           FrameSpec,
           GuestSpec,
           Scenario,
           ScenarioError,
           Step,
           load_scenario,
           parse_scenario,
)
from .registry import register_step
from .runner import ScenarioRun, StepResult, perform, run_scenario

__all__ = ["EntrySpec", "FrameSpec", "GuestSpec", "Scenario", "ScenarioError", "ScenarioRun",
           "Step", "StepResult", "load_scenario", "parse_scenario", "perform", "register_step",
           "run_scenario"]
