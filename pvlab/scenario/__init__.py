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
from .params import param
from .registry import StepArgs, StepKind, step, steps
from .runner import ScenarioRun, StepResult, perform, run_scenario

__all__ = ["EntrySpec", "FrameSpec", "GuestSpec", "Scenario", "ScenarioError", "ScenarioRun",
           "Step", "StepArgs", "StepKind", "StepResult", "load_scenario", "param", "parse_scenario",
           "perform", "run_scenario", "step", "steps"]
