# SPDX-License-Identifier: MIT
"""The hypervisor model: frames, page types, rules, domains, hypercalls, profiles."""

from . import logformats  # noqa: F401  (installs Xen's log lines into pvlab.trace)
from .domain import VM_ASSISTS, Domain, Vcpu
from .hypervisor import Guest, Xen
from .machine import AllocError, Machine
from .page_info import PageInfo
from .profiles import DEFAULT_PROFILE, PROFILES, Profile, get_profile
from .rules import PV32, PV64, Rule, all_rules

__all__ = ["AllocError", "DEFAULT_PROFILE", "Domain", "Guest", "Machine", "PROFILES", "PV32",
           "PV64", "PageInfo", "Profile", "Rule", "VM_ASSISTS", "Vcpu", "Xen", "all_rules",
           "get_profile"]
