# SPDX-License-Identifier: MIT
"""Xen's command line and the host's hardware, as data the rules consult.

A scenario's ``xen_cmdline:`` and ``hardware:`` keys become a :class:`XenCommandLine` and
a :class:`Hardware`; :func:`effective_settings` resolves them against the profile (which
options that version knows, and the defaults Xen computes at boot) into
:class:`Settings`, the one object the rules read.

Modelled from xen/arch/x86/mm.c (`opt_pv_linear_pt`, `boolean_param("pv-linear-pt")`,
4.10+), xen/arch/x86/spec_ctrl.c (`parse_pv_l1tf`, `l1tf_calculations`,
`opt_pv_l1tf_hwdom` / `opt_pv_l1tf_domu` defaults in `init_speculation_mitigations`) and
xen/arch/x86/include/asm/shadow.h (`pv_l1tf_check_pte`, `is_l1tf_safe_maddr`).
``allowsuperpage`` (`opt_allow_superpage`) existed until PV superpages were removed
(commit 56fff3e5e9, 4.10).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pvlab.errors import PvlabError

#: Options pvlab knows, with what they take (docs/scenarios.md).
OPTIONS = {
    "pv-linear-pt": "boolean: linear (recursive) pagetables for PV guests (default true)",
    "pv-l1tf": "boolean, or 'dom0=<bool>,domu=<bool>': the PV L1TF checks (default: domU "
               "on when the hardware is L1TF-vulnerable, dom0 off)",
    "allowsuperpage": "boolean: PV superpages (only Xen before 4.10 knows it)",
}
HARDWARE_KEYS = {
    "l1tf_vulnerable": "boolean: the CPU is vulnerable to L1TF (Intel before Cascade Lake); "
                       "default false",
    "paddr_bits": "integer: the CPU's physical address width (CPUID); default 46",
    "l1d_maxphysaddr": "integer: the width the L1D cache uses (default: paddr_bits)",
    "invpcid": "boolean: the CPU has INVPCID and Xen flushes with it; default true",
    "shadow_paging": "boolean: Xen was built with CONFIG_SHADOW_PAGING (default true); "
                     "without it an L1TF-vulnerable PTE crashes the domain",
}
_TRUE = ("1", "true", "yes", "on", "enable")
_FALSE = ("0", "false", "no", "off", "disable")


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise PvlabError(f"xen_cmdline: {key}={value!r} is not a boolean",
                     f"write {key}: true or {key}: false")


@dataclass(frozen=True)
class XenCommandLine:
    """The options a scenario puts on Xen's command line (None: not given)."""

    pv_linear_pt: bool | None = None
    pv_l1tf_dom0: bool | None = None
    pv_l1tf_domu: bool | None = None
    allowsuperpage: bool | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> XenCommandLine:
        raw = raw or {}
        for key in raw:
            if key not in OPTIONS:
                raise PvlabError(f"xen_cmdline: unknown option {key!r}",
                                 f"use one of: {', '.join(OPTIONS)}")
        dom0 = domu = None
        if "pv-l1tf" in raw:
            dom0, domu = _parse_pv_l1tf(raw["pv-l1tf"])
        return cls(
            _bool("pv-linear-pt", raw["pv-linear-pt"]) if "pv-linear-pt" in raw else None,
            dom0, domu,
            _bool("allowsuperpage", raw["allowsuperpage"]) if "allowsuperpage" in raw else None)

    def words(self) -> list[str]:
        """The options as Xen's command line writes them (for `pvlab verify`'s boot)."""
        out = []
        if self.pv_linear_pt is not None:
            out.append(f"pv-linear-pt={'true' if self.pv_linear_pt else 'false'}")
        if self.pv_l1tf_dom0 is not None or self.pv_l1tf_domu is not None:
            parts = [f"{who}={'true' if val else 'false'}" for who, val in
                     (("dom0", self.pv_l1tf_dom0), ("domu", self.pv_l1tf_domu))
                     if val is not None]
            out.append("pv-l1tf=" + ",".join(parts))
        if self.allowsuperpage is not None:
            out.append("allowsuperpage" if self.allowsuperpage else "allowsuperpage=false")
        return out

    def given(self) -> dict[str, Any]:
        """The mapping a scenario file would write."""
        out: dict[str, Any] = {}
        if self.pv_linear_pt is not None:
            out["pv-linear-pt"] = self.pv_linear_pt
        if self.pv_l1tf_dom0 is not None or self.pv_l1tf_domu is not None:
            out["pv-l1tf"] = ",".join(f"{who}={'true' if v else 'false'}" for who, v in
                                      (("dom0", self.pv_l1tf_dom0), ("domu", self.pv_l1tf_domu))
                                      if v is not None)
        if self.allowsuperpage is not None:
            out["allowsuperpage"] = self.allowsuperpage
        return out


def _parse_pv_l1tf(value: Any) -> tuple[bool | None, bool | None]:
    """`parse_pv_l1tf`: a boolean for both, or a list of dom0=<bool> / domu=<bool>."""
    if isinstance(value, bool):
        return value, value
    if isinstance(value, Mapping):
        items = [f"{k}={v}" for k, v in value.items()]
    else:
        items = [x.strip() for x in str(value).split(",") if x.strip()]
    dom0 = domu = None
    for item in items:
        low = item.lower()
        if low in _TRUE or low in _FALSE:
            dom0 = domu = low in _TRUE
            continue
        who, _, val = low.partition("=")
        if who in ("dom0", "domu"):
            b = _bool(f"pv-l1tf {who}", val if val else "true")
            if who == "dom0":
                dom0 = b
            else:
                domu = b
            continue
        raise PvlabError(f"xen_cmdline: pv-l1tf item {item!r} is not understood",
                         "write pv-l1tf: true, false, or 'dom0=true,domu=false'")
    return dom0, domu


@dataclass(frozen=True)
class Hardware:
    """The host CPU, as far as the PV memory rules care."""

    l1tf_vulnerable: bool = False
    paddr_bits: int = 46
    l1d_maxphysaddr: int | None = None
    invpcid: bool = True
    shadow_paging: bool = True

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Hardware:
        raw = raw or {}
        for key in raw:
            if key not in HARDWARE_KEYS:
                raise PvlabError(f"hardware: unknown key {key!r}",
                                 f"use one of: {', '.join(HARDWARE_KEYS)}")
        kw: dict[str, Any] = {}
        for key in ("l1tf_vulnerable", "invpcid", "shadow_paging"):
            if key in raw:
                kw[key] = _bool(f"hardware {key}", raw[key])
        for key in ("paddr_bits", "l1d_maxphysaddr"):
            if key in raw:
                v = raw[key]
                if isinstance(v, bool) or not isinstance(v, int) or not 32 <= v <= 52:
                    raise PvlabError(f"hardware: {key} {v!r} is not a width of 32 to 52 bits",
                                     f"write {key}: 46")
                kw[key] = v
        return cls(**kw)

    @property
    def l1tf_addr_mask(self) -> int:
        """`l1tf_addr_mask`: the address bits the L1D cache looks at."""
        return ((1 << (self.l1d_maxphysaddr or self.paddr_bits)) - 1) & ~0xFFF

    @property
    def l1tf_safe_maddr(self) -> int:
        """`l1tf_safe_maddr` (`l1tf_calculations`): above it nothing is cacheable. A wider
        L1D than CPUID: 1 << paddr_bits; the same width: the top quarter (3 << bits-2)."""
        l1d = self.l1d_maxphysaddr or self.paddr_bits
        return (1 << self.paddr_bits) if l1d > self.paddr_bits else 3 << (self.paddr_bits - 2)

    def is_l1tf_safe_maddr(self, pte: int) -> bool:
        """`is_l1tf_safe_maddr`: address 0 (the real-mode IVT) or above the safe limit."""
        maddr = pte & self.l1tf_addr_mask
        return maddr == 0 or maddr >= self.l1tf_safe_maddr


@dataclass(frozen=True)
class Settings:
    """The command line and hardware resolved for one profile: what the rules read."""

    cmdline: XenCommandLine = field(default_factory=XenCommandLine)
    hardware: Hardware = field(default_factory=Hardware)
    linear_pagetables: bool = True
    pv_l1tf_dom0: bool = False
    pv_l1tf_domu: bool = False
    allow_superpage: bool = False
    #: What Xen would print at boot about options this version does not know.
    ignored: tuple[str, ...] = ()

    def l1tf_active(self, privileged: bool) -> bool:
        """`d->arch.pv.check_l1tf` (`pv_l1tf_domain_init`): hwdom or domU setting."""
        return self.pv_l1tf_dom0 if privileged else self.pv_l1tf_domu


def effective_settings(profile: Any, cmdline: XenCommandLine | None = None,
                       hardware: Hardware | None = None) -> Settings:
    """Resolve the options against what `profile`'s Xen knows, with Xen's boot defaults."""
    c = cmdline or XenCommandLine()
    h = hardware or Hardware()
    ignored = []
    linear = profile.linear_pagetables
    if c.pv_linear_pt is not None:
        if profile.has_pv_linear_pt_option:
            linear = c.pv_linear_pt
        else:
            ignored.append("pv-linear-pt: unknown before Xen 4.10 (commit 3285e75dea)")
    dom0, domu = False, False
    if profile.has_pv_l1tf_option:
        # init_speculation_mitigations: hwdom off, domU on when the CPU is vulnerable
        # (and Xen is not the PV shim).
        dom0 = c.pv_l1tf_dom0 if c.pv_l1tf_dom0 is not None else False
        domu = c.pv_l1tf_domu if c.pv_l1tf_domu is not None else h.l1tf_vulnerable
    elif c.pv_l1tf_dom0 is not None or c.pv_l1tf_domu is not None:
        ignored.append("pv-l1tf: unknown before the XSA-273 fix (06e8b622d3)")
    superpage = False
    if c.allowsuperpage is not None:
        if profile.has_allowsuperpage_option:
            superpage = c.allowsuperpage
        else:
            ignored.append("allowsuperpage: PV superpages were removed in Xen 4.10 "
                           "(commit 56fff3e5e9); Xen ignores the option")
    return Settings(c, h, linear, dom0, domu, superpage, tuple(ignored))


__all__ = ["HARDWARE_KEYS", "OPTIONS", "Hardware", "Settings", "XenCommandLine",
           "effective_settings"]
