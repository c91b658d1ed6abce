# SPDX-License-Identifier: MIT
"""Unicorn's (QEMU's) x86 MMU as a walk baseline: `uc_vmem_translate` through ctypes.

The same approach as tests/x86/test_x86_walk_unicorn.py: a Unicorn CPU in 4-level
paging (EFER.LME, CR4.PAE, CR0.PG), supervisor mode, the pagetables copied into its RAM.
"""

from __future__ import annotations

import ctypes

import numpy as np

from pvlab.xen.machine import Machine

EFER_MSR = 0xC0000080
EFER_LME, EFER_NXE = 1 << 8, 1 << 11
CR0_PE, CR0_WP, CR0_PG = 1 << 0, 1 << 16, 1 << 31
CR4_PAE = 1 << 5


class UnicornWalker:
    """Translate addresses with Unicorn on a copy of a machine's low memory."""

    def __init__(self, machine: Machine, cr3: int, ram: int = 16 << 20) -> None:
        import unicorn
        from unicorn import x86_const as ux
        from unicorn.unicorn_py3 import unicorn as binding

        self.uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_32)
        self.uc.mem_map(0, ram)
        c = machine.contents
        live = np.flatnonzero((c.row_mfn >= 0) & (c.row_mfn < ram >> 12))
        for row in live.tolist():
            self.uc.mem_write(int(c.row_mfn[row]) << 12, c.data[row].tobytes())
        self.uc.msr_write(EFER_MSR, EFER_LME | EFER_NXE)
        self.uc.reg_write(ux.UC_X86_REG_CR4, CR4_PAE)
        self.uc.reg_write(ux.UC_X86_REG_CR0, CR0_PE | CR0_PG | CR0_WP)
        self.uc.reg_write(ux.UC_X86_REG_CR3, cr3)
        lib = ctypes.CDLL(binding.uclib._name)
        self._translate = lib.uc_vmem_translate
        self._translate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                                    ctypes.POINTER(ctypes.c_uint64)]
        self._translate.restype = ctypes.c_int
        self._prot = unicorn.UC_PROT_WRITE

    def translate_all(self, vas: list[int]) -> list[int | None]:
        """Physical address per VA for a supervisor write (None: the walk faults)."""
        out = ctypes.c_uint64()
        ref = ctypes.byref(out)
        uch, fn, prot = self.uc._uch, self._translate, self._prot
        res: list[int | None] = []
        for va in vas:
            res.append(out.value if fn(uch, va, prot, ref) == 0 else None)
        return res
