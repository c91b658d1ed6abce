# SPDX-License-Identifier: MIT
"""The rules registry: every check Xen makes on a PV guest's pagetables, registered once.

Each :class:`Rule` carries its level, a name, a one-line explanation, the errno it
gives and the Xen function it models. The type engine fails *by rule id*, so one table
drives behaviour, explanations, the docs (`pvlab rules`) and the exercises.

A 32-bit PV (compat) guest uses the 64-bit rule set with the L3 overrides Xen applies to
compat guests: :data:`PV32` is derived from :data:`PV64` (the py65 variant pattern).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from pvlab.trace import Errno
from pvlab.x86.flags import flag_names

if TYPE_CHECKING:
    from pvlab.xen.domain import Domain
    from pvlab.xen.profiles import Profile

# Xen's 24-bit flag word (`get_pte_flags`): PTE bits 0-11 and 52-63 (as 12-23).
_PWT, _PCD, _PSE, _G = 0x8, 0x10, 0x80, 0x100
_PAGE_GNTTAB = 0x400000  # PTE bit 62, debug builds only
#: `base_disallow_mask` (`arch_init_memory`, NX available): PWT, PCD, PSE/PAT, G, bits 24-31.
BASE_DISALLOW_MASK = 0xFF000198
#: `l3_disallow_mask` for a 32-bit PV domain: also every PTE bit 52-63.
PV32_L3_DISALLOW_MASK = 0xFFFFF198
#: `COMPAT_L2_PAGETABLE_FIRST_XEN_SLOT` for a domU (`HYPERVISOR_COMPAT_VIRT_START` 0xF5800000).
COMPAT_L2_FIRST_XEN_SLOT = 428
#: `ROOT_PAGETABLE_FIRST_XEN_SLOT` .. `ROOT_PAGETABLE_LAST_XEN_SLOT` of a 64-bit L4.
L4_FIRST_XEN_SLOT, L4_LAST_XEN_SLOT = 256, 271


def flag_word_names(word: int, level: int) -> str:
    """Names of bits in Xen's 24-bit flag word."""
    pte = (word & 0xFFF) | ((word & 0xFFF000) << 40)
    return "|".join(flag_names(pte, level)) or hex(word)


MaskFn = Callable[["Domain", "Profile"], int]
#: Which guests a rule concerns.
Guests = Literal["both", "pv32", "pv64"]


@dataclass(frozen=True)
class Rule:
    """One check: what it refuses, with which errno, and which Xen function makes it."""

    id: str
    level: int  # 0 when not tied to one pagetable level
    errno: Errno | None
    summary: str
    xen_function: str
    guests: Guests = "both"
    mask: MaskFn | None = None  # for flag rules: the disallow mask

    @property
    def log_formats(self) -> tuple[str, ...]:
        """The messages Xen prints for this check (`pvlab.xen.logformats`)."""
        from pvlab.xen.logformats import formats_for_rule

        return tuple(t for f in formats_for_rule(self.id) for t in f.formats)


def _l1_mask(d: Domain, p: Profile) -> int:
    mask = (BASE_DISALLOW_MASK | (_PAGE_GNTTAB if p.debug_build else 0)) & ~_G
    if d.privileged:  # cache_flush_permitted(): dom0 / driver domains
        mask &= ~(_PSE | _PCD | _PWT)
    return mask


def _base_mask(d: Domain, p: Profile) -> int:
    return BASE_DISALLOW_MASK


def _l2_mask(d: Domain, p: Profile) -> int:
    """`L2_DISALLOW_MASK`: PSE is in it since XSA-148 (before, only without the
    allowsuperpage opt-in was a PSE entry refused, and only at validation)."""
    return BASE_DISALLOW_MASK if p.l2_pse_disallowed else BASE_DISALLOW_MASK & ~_PSE


def _pv32_l3_mask(d: Domain, p: Profile) -> int:
    return PV32_L3_DISALLOW_MASK


_RULES_64: list[Rule] = [
    # --- per-level entry flag rules --------------------------------------------------
    Rule("l1_flags", 1, Errno.EINVAL,
         "An L1 entry may not set PWT, PCD or PAT unless the domain holds I/O resources; "
         "PTE bit 62 (_PAGE_GNTTAB) is refused by debug builds. G is allowed.",
         "get_page_from_l1e (l1_disallow_mask)", mask=_l1_mask),
    Rule("l2_flags", 2, Errno.EINVAL,
         "An L2 entry may not set PWT, PCD, PSE or G: PV guests cannot use 2 MiB superpages.",
         "get_page_from_l2e (L2_DISALLOW_MASK)", mask=_l2_mask),
    Rule("l2_superpage", 2, Errno.EINVAL,
         "Before XSA-148 a PSE L2 entry passed the flag mask and was refused only when "
         "validated, unless Xen booted with allowsuperpage (PV superpages, removed in 4.10).",
         "get_page_from_l2e (opt_allow_superpage)"),
    Rule("l3_flags", 3, Errno.EINVAL,
         "A 64-bit guest's L3 entry may not set PWT, PCD, PS or G (no 1 GiB pages).",
         "get_page_from_l3e (l3_disallow_mask)", guests="pv64", mask=_base_mask),
    Rule("l4_flags", 4, Errno.EINVAL,
         "An L4 entry may not set PWT, PCD, PS or G.",
         "get_page_from_l4e (L4_DISALLOW_MASK)", mask=_base_mask),
    # --- references and types --------------------------------------------------------
    Rule("not_owned", 0, Errno.EINVAL,
         "A pagetable entry or hypercall may only name frames the domain owns.",
         "get_page_from_mfn / get_page"),
    Rule("type_conflict", 0, Errno.EINVAL,
         "A frame holding type references of one type cannot take a reference of another: "
         "a page is one of L1..L4, writable, segment descriptor at a time.",
         "_get_page_type"),
    Rule("l1_mmio", 1, Errno.EPERM,
         "An L1 entry mapping MMIO or a dom_io frame needs I/O memory permission.",
         "get_page_from_l1e"),
    Rule("l1_invalid_mfn", 1, Errno.EINVAL,
         "An L1 entry naming the all-ones MFN (INVALID_MFN) is refused with EINVAL (not the "
         "EPERM of other I/O frames without permission), silently.",
         "get_page_from_l1e"),
    Rule("l1_foreign", 1, Errno.EBUSY,
         "An L1 entry may only map the page owner's own frames (or dom_io with permission).",
         "get_page_from_l1e"),
    Rule("l1_writable_pagetable", 1, Errno.EBUSY,
         "An L1 entry with RW needs the target as a writable page; a frame in use as a "
         "pagetable (or descriptor table) cannot be mapped writable.",
         "get_page_from_l1e"),
    # --- linear (recursive) pagetables -----------------------------------------------
    Rule("linear_disabled", 0, Errno.EINVAL,
         "Linear pagetables are disabled (pv-linear-pt=false on Xen's command line, 4.10+).",
         "define_get_linear_pagetable (opt_pv_linear_pt)"),
    Rule("l1tf", 0, None,
         "A non-present entry whose address the CPU could use for an L1TF read (not 0, "
         "below the safe limit) or with PSE (L2+) switches the domain to shadow paging, or "
         "crashes it without CONFIG_SHADOW_PAGING (pv-l1tf; default on for domUs on "
         "vulnerable hardware).", "pv_l1tf_check_pte"),
    Rule("uvmf_after_error", 0, None,
         "Before XSA-279 update_va_mapping flushed after an error: INVLPG of a guest's "
         "non-canonical VA via INVPCID raised #GP in Xen (host crash).",
         "__do_update_va_mapping", guests="pv64"),
    Rule("linear_rw", 0, Errno.EINVAL,
         "A linear (same-level) pagetable entry must be read-only.",
         "define_get_linear_pagetable"),
    Rule("linear_target", 0, Errno.EINVAL,
         "A linear entry must point at an already-validated table of the same level.",
         "define_get_linear_pagetable"),
    Rule("linear_one_level", 0, Errno.EINVAL,
         "Linear use is limited to one level: a table used linearly may not contain linear "
         "entries and vice versa (XSA-240).", "inc_linear_entries / inc_linear_uses"),
    # --- Xen's own slots ---------------------------------------------------------------
    Rule("l4_xen_slots", 4, Errno.EINVAL,
         "L4 slots 256-271 belong to Xen: ignored (and overwritten) when the L4 is "
         "promoted, refused when the guest updates them.", "mod_l4_entry / init_xen_l4_slots",
         guests="pv64"),
    # --- pinning -------------------------------------------------------------------------
    Rule("already_pinned", 0, Errno.EINVAL, "Pinning is not nested: the frame is already pinned.",
         "do_mmuext_op (MMUEXT_PIN_*)"),
    Rule("not_pinned", 0, Errno.EINVAL, "Only a pinned frame can be unpinned.",
         "do_mmuext_op (MMUEXT_UNPIN_TABLE)"),
    # --- VM-assists and vCPUs ---------------------------------------------------------
    Rule("vm_assist_valid", 0, Errno.EINVAL,
         "The VM-assist type must be valid for the guest's bitness.",
         "do_vm_assist / arch_vm_assist_valid_mask"),
    Rule("vm_assist_cmd", 0, Errno.ENOSYS, "vm_assist takes enable (0) or disable (1).",
         "do_vm_assist"),
    Rule("vcpu_cr3_mismatch", 0, Errno.EOPNOTSUPP,
         "An initialised vCPU's context can only be reloaded with the same CR3.",
         "arch_set_info_guest"),
    Rule("vcpu_missing", 0, Errno.EINVAL, "The vCPU does not exist (XEN_DOMCTL_max_vcpus).",
         "do_domctl (XEN_DOMCTL_setvcpucontext)"),
    Rule("pae_l3_below_4g", 3, Errno.ERANGE,
         "A PAE L3 at or above 4 GiB (MFN >= 0x100000) is refused for a 32-bit PV guest "
         "without pae_extended_cr3 once vCPU 0 is initialised (Xen 4.19+).",
         "promote_l3_table", guests="pv32"),
]

_PV32_OVERRIDES: list[Rule] = [
    Rule("l3_flags", 3, Errno.EINVAL,
         "A 32-bit PV guest's L3 entry may not set PWT, PCD, PS, G or any bit 52-63 (NX "
         "included); RW, US, A and D are allowed (Xen adds RW|US itself).",
         "get_page_from_l3e (l3_disallow_mask, compat)", guests="pv32", mask=_pv32_l3_mask),
    Rule("pv32_l3_slot3", 3, Errno.EINVAL,
         "A 32-bit PV guest's L3 slot 3 must be present: it maps the top 1 GiB, where Xen "
         "keeps its own mappings in that L2.", "promote_l3_table", guests="pv32"),
    Rule("pv32_l3_slot3_shared", 3, Errno.EINVAL,
         "The L2 in slot 3 becomes the PAE Xen L2 and must be used by this L3 only "
         "('PAE L3 3rd slot is shared').", "pae_xen_mappings_check", guests="pv32"),
    Rule("pv32_l3_high_slots", 3, None,
         "Entries 4-511 of a 32-bit PV guest's L3 are cleared on promotion: the guest "
         "writes only 4, but the MMU walks the whole page in long mode.", "promote_l3_table",
         guests="pv32"),
    Rule("pv32_l3_update_slot", 3, Errno.EINVAL,
         "A 32-bit PV guest may not update L3 slots 3 and above of a live L3.",
         "mod_l3_entry", guests="pv32"),
    Rule("pv32_no_linear_l3", 3, Errno.EINVAL,
         "32-bit PV guests cannot have linear L3 entries (XSA-185).",
         "get_page_from_l3e", guests="pv32"),
    Rule("pae_xen_l2_slots", 2, Errno.EPERM,
         "Slots 428-511 of the PAE Xen L2 (VA 0xF5800000 and up) are Xen's: skipped on "
         "promotion, refused (-EPERM) on update.", "mod_l2_entry / init_xen_pae_l2_slots",
         guests="pv32"),
]


class RuleSet:
    """The rules for one guest bitness, by id."""

    def __init__(self, bitness: int, rules: list[Rule]) -> None:
        self.bitness = bitness
        self._rules = {r.id: r for r in rules}

    def derive(self, bitness: int, overrides: list[Rule]) -> RuleSet:
        merged = dict(self._rules)
        merged.update({r.id: r for r in overrides})
        return RuleSet(bitness, list(merged.values()))

    def __getitem__(self, rule_id: str) -> Rule:
        return self._rules[rule_id]

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def flag_rule(self, level: int) -> Rule:
        return self._rules[f"l{level}_flags"]

    def bad_flags(self, level: int, entry: int, d: Domain, p: Profile) -> int:
        """The disallowed bits of `entry` (Xen's 24-bit flag word), 0 when it passes."""
        rule = self.flag_rule(level)
        assert rule.mask is not None
        word = (entry & 0xFFF) | ((entry >> 40) & 0xFFF000)
        return word & rule.mask(d, p)


_PV64_OWN = RuleSet(64, _RULES_64)
PV32_RULES = _PV64_OWN.derive(32, _PV32_OVERRIDES)
# The 64-bit set also knows the compat-only rules (it never triggers them), so that a
# rule id is always resolvable.
PV64_RULES = _PV64_OWN.derive(64, [replace(r, guests="pv32") for r in _PV32_OVERRIDES
                                   if r.id != "l3_flags"])
#: Short names (the rule sets of the `PV64` / `PV32` ABIs, `pvlab.xen.abi`).
PV64, PV32 = PV64_RULES, PV32_RULES


def ruleset(d: Domain) -> RuleSet:
    """The rule set of `d`'s ABI."""
    return d.abi.rules


def all_rules() -> list[Rule]:
    """Every distinct rule (both bitnesses), for docs and exercises."""
    seen: dict[tuple[str, str], Rule] = {}
    for rs in (PV64, PV32):
        for r in rs:
            seen.setdefault((r.id, r.guests), r)
    return sorted(seen.values(), key=lambda r: (r.level or 9, r.id, r.guests))
