# SPDX-License-Identifier: MIT
"""update_va_mapping_otherdomain names its page owner as mmu_update's foreign: does
(`do_update_va_mapping_otherdomain`: get_pg_owner, then xsm_update_va_mapping), and the
verify plan still replays the forms real Xen was checked with (other, self)."""

from __future__ import annotations

import pytest
import yaml

from pvlab.errors import PvlabError
from pvlab.scenario import parse_scenario, run_scenario
from pvlab.scenario.registry import SKIP_OTHER_DOMAIN
from pvlab.verify.plan import plan_scenario

GUEST = """
name: uvm-other
guest: {bitness: 64, vcpu0_initialised: true, privileged: true}
frames: {pg: {}}
steps:
  - update_va_mapping_otherdomain: {va: 0xffff000000001000, to: pg, flags: [P], domain: DOM}
"""


@pytest.mark.parametrize(("dom", "result", "replayed"), [
    ("self", "EINVAL", True),        # DOMID_SELF: the caller; the non-canonical VA
    ("DOMID_SELF", "EINVAL", True),
    ("guest", "ESRCH", False),       # its own id, by name: 'Cannot specify itself'
    ("42", "ESRCH", False),          # no such domain
    ("DOMID_IO", "EINVAL", False),   # dom_io: a control domain may name it
])
def test_get_pg_owner_before_the_update(dom: str, result: str, replayed: bool) -> None:
    data = yaml.safe_load(GUEST.replace("DOM", dom))
    scn = parse_scenario(data)
    assert run_scenario(scn).steps[0].result == result
    plan = plan_scenario(data, id=1)
    assert (plan.steps[0].skip != SKIP_OTHER_DOMAIN) == replayed


def test_an_unprivileged_caller_may_not_name_dom_io() -> None:
    """xsm_update_va_mapping is XSM_TARGET without xsm_mmu_update's dom_io exception."""
    data = yaml.safe_load(GUEST.replace("DOM", "DOMID_IO").replace(", privileged: true", ""))
    assert run_scenario(parse_scenario(data)).steps[0].result == "EPERM"


def test_an_undeclared_domain_is_a_clear_error() -> None:
    data = yaml.safe_load(GUEST.replace("DOM", "dom7"))
    with pytest.raises(PvlabError, match="unknown domain 'dom7'"):
        parse_scenario(data)
