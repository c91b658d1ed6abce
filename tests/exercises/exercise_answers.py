# SPDX-License-Identifier: MIT
"""Right and typical wrong answers for every course exercise (shared by the tests)."""

from __future__ import annotations

BUILD_L2 = """name: my-l2
guest: {bitness: 64, vcpu0_initialised: true}
frames:
  l2: {}
  l1: {}
  data: {}
tables:
  l2:
    0: {to: l1, flags: [P, RW, A]}
  l1:
    0: {to: data, flags: [P, RW, A, D]}
    1: {to: l1, flags: [P, A]}
steps:
  - pin: {frame: l2, level: 2}
"""
REFUSE_EBUSY = """name: l1-maps-its-l2-writable
guest: {bitness: 64, vcpu0_initialised: true}
frames:
  l2: {}
  l1: {}
tables:
  l2:
    0: {to: l1, flags: [P, RW, A]}
  l1:
    5: {to: l2, flags: [P, RW, A]}
steps:
  - pin: {frame: l2, level: 2}
"""
REFUSE_COMPAT = """name: compat-l3-with-nx
guest: {bitness: 32, vm_assists: [pae_extended_cr3], vcpu0_initialised: true}
frames:
  l3: {}
  l2: {}
tables:
  l3:
    3: {to: l2, flags: [P, NX]}
steps:
  - pin: {frame: l3, level: 3}
"""
BUILD_HIGH = """name: high-l3-with-assist
xen: "4.19"
guest: {bitness: 32, vcpu0_initialised: true}
frames:
  l3: {above: 4GiB}
  l2: {}
tables:
  l3:
    3: {to: l2, flags: [P]}
steps:
  - vm_assist: {enable: pae_extended_cr3}
  - pin: {frame: l3, level: 3}
"""

#: answers that are right although the exercise's own answer is None (tasks)
TASK_ANSWERS = {
    "build-l2": BUILD_L2,
    "refuse-ebusy": REFUSE_EBUSY,
    "refuse-compat-flag": REFUSE_COMPAT,
    "build-high-l3": BUILD_HIGH,
}

#: two (or more) typical wrong answers per exercise; callables get the right answer
WRONG = {
    "walk-2level": [lambda a: a >> 12, lambda a: a + 0x1000, lambda a: "#PF at L1"],
    "walk-pae": [lambda a: a & ~0xFFF, lambda a: a ^ 0x3000, lambda a: "#PF at L2"],
    "walk-4level": [lambda a: a ^ 0x10, lambda a: a ^ 0x1000, lambda a: "#GP"],
    "walk-fault": [lambda a: 0x32000, lambda a: "#PF at L1", lambda a: "#GP", lambda a: "#PF"],
    "predict-l1-selfmap": [lambda a: ("EINVAL", "type_conflict"), lambda a: ("ok", None),
                           lambda a: ("EBUSY", "l1_flags")],
    "predict-retype": [lambda a: ("ok", None), lambda a: ("EBUSY", "l1_writable_pagetable"),
                       lambda a: ("EINVAL", "already_pinned")],
    "build-l2": [lambda a: BUILD_L2.replace("1: {to: l1, flags: [P, A]}",
                                            "1: {to: l1, flags: [P, RW, A]}"),
                 lambda a: BUILD_L2.replace("level: 2", "level: 1"),
                 lambda a: BUILD_L2.replace("    1: {to: l1, flags: [P, A]}\n", "")],
    "refuse-ebusy": [lambda a: BUILD_L2,
                     lambda a: REFUSE_EBUSY.replace("5: {to: l2, flags: [P, RW, A]}",
                                                    "5: {to: l1, flags: [P, RW, A]}"),
                     lambda a: REFUSE_EBUSY.replace("[P, RW, A]}\nsteps", "[P, PCD]}\nsteps")],
    "bughunt-writable": [lambda a: ("l2", 0), lambda a: ("l1", 1), lambda a: ("l1", 7)],
    "predict-compat-rw": [lambda a: ("EINVAL", "l3_flags"), lambda a: "EINVAL"],
    "predict-compat-slot3": [lambda a: ("ok", None), lambda a: ("EINVAL", "l3_flags"),
                             lambda a: ("ERANGE", "pae_l3_below_4g")],
    "refuse-compat-flag": [lambda a: REFUSE_COMPAT.replace("[P, NX]", "[P, RW, US]"),
                           lambda a: REFUSE_COMPAT.replace("[P, NX]", "[P, AVAIL1]"),
                           lambda a: REFUSE_COMPAT.replace("3: {to", "1: {to")
                           .replace("[P, NX]", "[P]"),
                           lambda a: REFUSE_COMPAT.replace("bitness: 32", "bitness: 64")
                           .replace("vm_assists: [pae_extended_cr3], ", "")],
    "bughunt-compat": [lambda a: ("l3", 3), lambda a: ("l3", 0), lambda a: ("mid", 0)],
    "cr3-encode": [lambda a: a >> 12 << 12 | 0, lambda a: (a & ~0xFFF) | 0x1,
                   lambda a: "0x0"],
    "cr3-decode": [lambda a: a & 0xFFFFF, lambda a: a + 1],
    "predict-new-baseptr": [lambda a: ("ok", None), lambda a: ("EINVAL", "l3_flags"),
                            lambda a: ("ERANGE", "pv32_l3_slot3")],
    "predict-xsa-182": [lambda a: ("ok", None), lambda a: ("EINVAL", "l4_flags"),
                        lambda a: ("EBUSY", "l1_writable_pagetable")],
    "predict-xsa-182-before": [lambda a: ("EINVAL", "linear_rw"),
                               lambda a: ("EINVAL", "type_conflict")],
    "predict-xsa-185": [lambda a: ("ok", None), lambda a: ("EINVAL", "linear_rw"),
                        lambda a: ("EINVAL", "pv32_l3_slot3_shared")],
    "bughunt-xsa-240": [lambda a: ("c", 3), lambda a: ("a", 0), lambda a: ("c", 0)],
    "seed-l3-check": [lambda a: [not x for x in a], lambda a: [True] * len(a),
                      lambda a: [False] * len(a)],
    "build-high-l3": [lambda a: BUILD_HIGH.replace(
        "  - vm_assist: {enable: pae_extended_cr3}\n", ""),
        lambda a: BUILD_HIGH.replace("{above: 4GiB}", "{below: 4GiB}"),
        lambda a: BUILD_HIGH.replace("vcpu0_initialised: true", "vcpu0_initialised: false")],
}
