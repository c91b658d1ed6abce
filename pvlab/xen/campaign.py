# SPDX-License-Identifier: MIT
"""The random-operation campaign: random sequences of guest operations, checked after
every step against Xen's bookkeeping rules.

One *sequence* drives a fresh :class:`World` (one Xen, one guest with two vCPUs, a pool of
its frames and a few foreign frames) through up to 50 random operations: frame
allocations below / above 4 GiB, raw guest writes into frames that are not live
pagetables, pins and unpins at random levels, `mmu_update`, NEW_BASEPTR,
NEW_USER_BASEPTR, vCPU contexts, vCPU resets and `vm_assist` calls, with random entry
flags and targets (own frames, a `dom_io` frame, a Xen frame, another domain's frame).
After every operation :func:`check_sequence` asserts:

1. :func:`pvlab.xen.invariants.audit` finds nothing: every type and general count equals
   the references that hold it, no live pagetable is mapped writable, pinned implies
   validated, no `PGT_partial`, `pae_xen_l2` only where Xen leaves it, `linear_pt_count`
   consistent.
2. A failed operation (rc != 0) leaves every `page_info` record, count, type, pin, vCPU
   and VM-assist as it was. Documented exceptions, each from real Xen (see
   :func:`failure_diff`):
   - S27: a failed "PAE L3 3rd slot is shared" check leaks one type and one general
     reference on the slot-3 L2 (read off the trace, see `leaked_refs`);
   - a frame whose type count was 0 may end with another type field / validated bit:
     a failed `validate_page` clears `type_info` or, after a failure at entry i > 0,
     leaves the attempted type at count 0; a temporary writable type leaves
     `PGT_validated` (reference §1.3, §1.4);
   - a failed vCPU 0 context has already set `d->vm_assist` from the context:
     `arch_set_info_guest` does that before it takes the CR3 reference and does not
     undo it (§3.1 "Other ways", §5.4 step 4);
   - page contents Xen rewrites while validating: compat L3 entries 4-511 cleared
     (§2.4 step 1), Xen's entries in a PAE Xen L2 (slots 428-511) and in an L4's Xen
     slots (256-271), and the guest-visible adjustments of accepted entries that a
     failed promotion does not undo or un-adjusts (§2.2: 64-bit US/G/A/_PAGE_GUEST_KERNEL,
     compat L3 RW/US/A).
3. A successful pin followed by an unpin returns every general and type count (and
   `linear_pt_count`) to where it was before the pin.

The same checker serves the derandomised hypothesis test (tests/xen/test_xen_properties.py)
and the long campaign (`pvlab campaign`, `make campaign`), which feeds it plainly random
sequences: seed N runs bitness/profile ``PARAMS[N % 4]`` with
``random.Random(N)`` choosing the length (1-50) and every operation (:func:`sequence_for_seed`).
This module only computes; it never prints (the command in pvlab/commands/campaign.py does).
"""

from __future__ import annotations

import pickle
import random
import struct
import traceback
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pvlab.errors import PvlabError
from pvlab.trace import Outcome
from pvlab.x86.flags import BIT52, NX, PCD, PS, PWT, RW, US, A, D, G, P
from pvlab.xen import hypercalls
from pvlab.xen.abi import PV64Abi
from pvlab.xen.hypervisor import Xen
from pvlab.xen.invariants import LeakLedger, audit, leaked_refs
from pvlab.xen.page_info import PGT_count_mask

#: An operation: its kind, then its arguments (the shape `sample_op` and the property
#: test's hypothesis strategy both produce), e.g. ("pin", 3, 2).
Op = tuple[Any, ...]

#: (bitness, profile) pairs the campaign covers; seed N runs PARAMS[N % 4].
PARAMS: tuple[tuple[int, str], ...] = tuple((b, p) for b in (32, 64) for p in ("4.17", "4.19"))
MAX_SEQUENCE_LENGTH = 50
SLOTS = [0, 1, 2, 3, 4, 10, 256, 258, 300, 427, 428, 500, 511]
EXTRA_FLAGS = [RW, US, A, D, PS, PWT, PCD, G, NX, BIT52, 1 << 9]
COMMON_FLAGS = [P, P | RW, P | A, P | RW | US | A, P | US, 0]
POOL_LIMIT = 10


def _adjust_bits(abi: PV64Abi) -> int:
    """Every bit Xen's `adjust_guest_l*e` may add to an accepted entry of this ABI: a
    failed promotion may leave those behind (or strip them again, `unadjust_guest_l3e`)."""
    bits = 0
    for added in abi.entry_adjust.values():
        bits |= added
    for e in (P, P | US):
        bits |= abi.adjust_l1e(e) ^ e
    return bits


_ENTRIES = struct.Struct("<512Q")
_ZERO_FRAME = bytes(_ENTRIES.size)
_TYPE_BITS = (7 << 61) | (1 << 58) | (1 << 57)  # type field, validated, pae_xen_l2


class Violation(AssertionError):
    """The checker found state real Xen would not have."""


# --------------------------------------------------------------------- snapshots
@dataclass
class Snap:
    """Everything a failed operation must leave alone (see :func:`failure_diff`)."""

    pages: dict[int, tuple[int | None, int, int, int]]
    vcpus: dict[int, list[tuple[bool, int | None, int | None]]]
    assists: dict[int, int]
    contents: dict[int, bytes]    # raw frame contents, decoded only where they differ


def snapshot(xen: Xen) -> Snap:
    m = xen.machine
    return Snap(
        {pi.mfn: (pi.owner, pi.count_info, pi.type_info, pi.linear_pt_count)
         for pi in m.pages()},
        {d.domid: [(v.is_initialised, v.guest_table, v.guest_table_user) for v in d.vcpus]
         for d in xen.domains.values()},
        {d.domid: d.vm_assist for d in xen.domains.values()},
        {mfn: bytes(buf) for mfn, buf in m._frames.items()},
    )


def counts(xen: Xen) -> dict[int, tuple[int, int, int, bool]]:
    """Per frame: (general count, type count, linear_pt_count, pinned)."""
    return {pi.mfn: (pi.count, pi.type_count, pi.linear_pt_count, pi.pinned)
            for pi in xen.machine.pages()}


# ------------------------------------------------------------------------- world
class World:
    """One Xen, one guest with two vCPUs, a pool of its frames and some foreign frames."""

    def __init__(self, bitness: int, profile: str) -> None:
        self.xen = Xen(profile, "8GiB")
        self.g = self.xen.create_domain(bitness, vcpus=2)
        self.abi = self.g.domain.abi
        self.adjust = _adjust_bits(self.abi)
        self.other = self.xen.create_domain(64)
        self.pool = [self.g.alloc_frame(below="4GiB") for _ in range(3)]
        self.pool += [self.g.alloc_frame(above="4GiB") for _ in range(3)]
        # A dom_io frame, the first frame of the compat M2P (dom_xen), another domain's.
        self.specials = [1, self.xen.compat_m2p_base, self.other.alloc_frame()]
        for mfn in self.specials:
            self.xen.machine.page(mfn)  # make the lazily created page_info exist
        self.ledger = LeakLedger()

    def frame(self, i: int) -> int:
        return self.pool[i % len(self.pool)]

    def target(self, i: int) -> int:
        allf = self.pool + self.specials
        return allf[i % len(allf)]

    def do(self, op: Op) -> Outcome | None:
        """Perform one operation; None for those that are no hypercall (or were skipped)."""
        g, kind = self.g, op[0]
        if kind == "alloc":
            if len(self.pool) >= POOL_LIMIT:
                return None
            self.pool.append(g.alloc_frame(below="4GiB" if op[1] == "below" else None,
                                           above="4GiB" if op[1] == "above" else None))
            return None
        if kind == "write":
            _, f, slot, t, fl = op
            mfn = self.frame(f)
            if g.page(mfn).is_live_pagetable:
                try:
                    g.write_entry(mfn, slot, self.target(t), fl)
                except PvlabError:
                    return None
                raise Violation(f"a raw write into live pagetable MFN {mfn:#x} was accepted")
            g.write_entry(mfn, slot, self.target(t), fl)
            return None
        if kind == "tree":
            # A well-formed chain top -> ... -> data (L3 slot `slot`, or slot 3 at a compat
            # L3), written into the frames that are not live.
            _, fs, slot, rw = op
            chain = [self.frame(f) for f in fs]
            levels = self.abi.top_level
            for k in range(levels):
                table, target = chain[k], chain[k + 1]
                index = 3 if (k == 0 and self.abi.pae_top) else slot
                fl = "P|RW|A" if (k == levels - 1 and rw) else "P|A" if k == levels - 1 \
                    else "P|RW|US|A"
                if not g.page(table).is_live_pagetable:
                    g.write_entry(table, index, target, fl)
            return None
        if kind == "alias":
            # Frame f's entry `slot` := frame h's entry 3 (shared slot-3 L2s, S27/S30).
            _, f, h, slot = op
            dst = self.frame(f)
            if not g.page(dst).is_live_pagetable:
                g.write_entry(dst, slot, value=g.read_entry(self.frame(h), 3))
            return None
        if kind == "boot":
            # vCPU 0 of a running guest: initialised, boot tables outside the pool (as a
            # scenario's `vcpu0_initialised: true`).
            v0 = g.domain.vcpus[0]
            if not v0.is_initialised and v0.guest_table is None:
                v0.is_initialised = True
            return None
        if kind == "pin":
            return g.pin(self.frame(op[1]), op[2])
        if kind == "unpin":
            return g.unpin(self.frame(op[1]))
        if kind == "mmu_update":
            _, f, slot, t, fl = op
            return g.mmu_update(self.frame(f), slot, self.target(t), fl)
        if kind in ("new_baseptr", "new_user_baseptr"):
            # NEW_BASEPTR acts on the calling vCPU, which runs, so is initialised
            # (see test_new_baseptr_on_uninitialised_vcpu_then_context_leaks).
            if not g.domain.vcpus[op[2]].is_initialised:
                return None
            call = g.new_baseptr if kind == "new_baseptr" else g.new_user_baseptr
            return call(self.frame(op[1]), vcpu=op[2])
        if kind == "ctx":
            _, vcpu, f, mask = op
            assists = None if mask is None else [b for b in range(64) if mask >> b & 1]
            return g.set_vcpu_context(vcpu, cr3=self.frame(f), vm_assists=assists)
        if kind == "reset":
            return g.vcpu_reset(op[1])
        if kind == "vm_assist":
            return g.vm_assist(op[1], op[2])
        raise ValueError(f"unknown campaign operation {kind!r}")


# ----------------------------------------------------------------------- checks
def _page_diffs(before: Snap, after: Snap, leaks: Counter[int]) -> list[str]:
    diffs: list[str] = []
    for mfn in set(before.pages) | set(after.pages):
        b = before.pages.get(mfn)
        a = after.pages.get(mfn)
        if b is None or a is None:
            diffs.append(f"MFN {mfn:#x} appeared/disappeared: {b} -> {a}")
            continue
        (bo, bc, bt, bl), (ao, ac, at, al) = b, a
        n = leaks.get(mfn, 0)
        if ao != bo or al != bl or ac != bc + n:
            diffs.append(f"MFN {mfn:#x}: owner/count/linear {bo}/{bc:#x}/{bl} -> "
                         f"{ao}/{ac:#x}/{al} (leaks {n})")
        if bt & PGT_count_mask == 0:
            # Exception: type field / validated may change at type count 0 (§1.3).
            if at & ~_TYPE_BITS:
                diffs.append(f"MFN {mfn:#x}: type_info {bt:#x} -> {at:#x}")
        elif at != bt + n:
            diffs.append(f"MFN {mfn:#x}: type_info {bt:#x} -> {at:#x} (leaks {n})")
    return diffs


def _content_diffs(w: World, before: Snap, after: Snap, out: Outcome) -> list[str]:
    diffs: list[str] = []
    checks = {(ev.check, ev.mfn) for ev in out.events}
    adjust = w.adjust
    for mfn in set(before.contents) | set(after.contents):
        braw, araw = before.contents.get(mfn, _ZERO_FRAME), after.contents.get(mfn, _ZERO_FRAME)
        if braw == araw:
            continue
        for i, (bv, av) in enumerate(zip(_ENTRIES.unpack(braw), _ENTRIES.unpack(araw),
                                         strict=True)):
            if bv == av:
                continue
            if i >= 4 and av == 0 and ("pv32_l3_high_slots", mfn) in checks:
                continue  # compat L3 entries 4-511 cleared
            if i >= 428 and ("pae_xen_l2_slots", mfn) in checks:
                continue  # Xen's entries in a PAE Xen L2
            if 256 <= i <= 271 and ("l4_xen_slots", mfn) in checks:
                continue  # an L4's Xen slots
            if not (bv ^ av) & ~adjust:
                continue  # guest-visible adjustments (§2.2)
            diffs.append(f"MFN {mfn:#x} entry {i}: {bv:#x} -> {av:#x}")
    return diffs


def failure_diff(w: World, op: Op, before: Snap, after: Snap, out: Outcome) -> list[str]:
    """Differences a failed operation left, minus Xen's documented exceptions."""
    diffs = _page_diffs(before, after, leaked_refs(out))
    if after.vcpus != before.vcpus:
        diffs.append(f"vCPUs {before.vcpus} -> {after.vcpus}")
    for domid, va in after.assists.items():
        if va == before.assists[domid]:
            continue
        ctx_v0 = op[0] == "ctx" and op[1] == 0 and domid == w.g.domid
        # exception: arch_set_info_guest sets it first (a context without assists: 0)
        if not (ctx_v0 and va == (op[3] or 0)):
            diffs.append(f"d{domid} vm_assist {before.assists[domid]:#x} -> {va:#x}")
    return diffs + _content_diffs(w, before, after, out)


def _check_pin_unpin(w: World, op: Op, before_counts: dict[int, Any]) -> None:
    """Property 3 on a copy: unpinning what was just pinned restores every count."""
    xen2: Xen = pickle.loads(pickle.dumps(w.xen, pickle.HIGHEST_PROTOCOL))  # a deep copy
    g2 = xen2.domains[w.g.domid]
    un = hypercalls.mmuext_op(xen2, g2, hypercalls.MMUEXT_UNPIN_TABLE, w.frame(op[1]))
    if not un.ok:
        raise Violation(f"pin {op} succeeded but the unpin failed:\n{un.explain()}")
    if counts(xen2) != before_counts:
        raise Violation(f"pin+unpin of {op} did not restore counts")


def _step(w: World, op: Op, stats: Counter[str]) -> bool:
    """One operation and its checks; True when it was a hypercall (had an Outcome)."""
    before = snapshot(w.xen)
    before_counts = counts(w.xen)
    out = w.do(op)
    if out is not None and out.crashed:
        # A debug build panicked (promote_l4_table's ASSERT_UNREACHABLE): the host is gone.
        stats["crash"] += 1
        raise _HostGone
    if out is not None:
        w.ledger.record(out)
        stats[f"{op[0]}:{out.result}"] += 1
        stats[f"depth:{out.counters.max_depth}"] += 1
        stats["leaks"] += sum(leaked_refs(out).values())
    errs = audit(w.xen, leaked=w.ledger.leaks)
    if errs:
        raise Violation(f"after {op} -> {out!r}:\n" + "\n".join(errs))
    if out is None:
        return False
    if not out.ok:
        diffs = failure_diff(w, op, before, snapshot(w.xen), out)
        if diffs:
            raise Violation(f"failed {op} -> {out!r} changed state:\n" + "\n".join(diffs))
    elif op[0] == "pin" and not w.abi.pin_does_nothing(op[2]):
        _check_pin_unpin(w, op, before_counts)
        stats["pin+unpin"] += 1
    return True


@dataclass
class SequenceResult:
    """What one sequence did: operation counts by kind and result, and the first
    violation (None when every check held)."""

    stats: Counter[str] = field(default_factory=Counter)
    operations: int = 0
    hypercalls: int = 0
    violation: str | None = None


class _HostGone(Exception):  # noqa: N818 - not an error: Xen panicked, nothing runs after
    """The modelled hypervisor panicked (`Outcome.crash`): the sequence ends there."""


def check_sequence(bitness: int, profile: str, ops: Iterable[Op]) -> SequenceResult:
    """Run `ops` on a fresh :class:`World`, checking after every one; stops at the first
    violation (a model crash counts as one, with its traceback)."""
    res = SequenceResult()
    try:
        w = World(bitness, profile)
        errs = audit(w.xen)
        if errs:
            raise Violation("a fresh world fails the audit:\n" + "\n".join(errs))
        for op in ops:
            res.operations += 1
            res.hypercalls += _step(w, op, res.stats)
    except _HostGone:
        res.hypercalls += 1  # the sequence ends with Xen's panic (a modelled result)
    except Violation as v:
        res.violation = str(v)
    except Exception:  # noqa: BLE001 - a crash of the model is a finding, not the end
        res.violation = "crash:\n" + traceback.format_exc(limit=6)
    return res


# ------------------------------------------------------------------ random input
def sample_op(rnd: random.Random) -> Op:
    """A plain-random operation with the same shape as the property test's strategy."""
    k = rnd.choice(["alloc", "tree", "alias", "boot", "write", "pin", "pin", "pin", "unpin",
                    "mmu_update", "new_baseptr", "ctx", "reset", "vm_assist"])
    fl = rnd.choice(COMMON_FLAGS + [P | rnd.choice(EXTRA_FLAGS)])
    if k == "alloc":
        return (k, rnd.choice(["below", "above", "any"]))
    if k == "alias":
        return (k, rnd.randrange(64), rnd.randrange(64), rnd.choice([0, 3]))
    if k == "boot":
        return (k,)
    if k == "tree":
        return (k, [rnd.randrange(64) for _ in range(5)], rnd.choice([0, 1, 3]),
                rnd.random() < 0.5)
    if k in ("write", "mmu_update"):
        return (k, rnd.randrange(64), rnd.choice(SLOTS), rnd.randrange(64), fl)
    if k == "pin":
        return (k, rnd.randrange(64), rnd.randint(1, 4))
    if k == "unpin":
        return (k, rnd.randrange(64))
    if k == "new_baseptr":
        return (k, rnd.randrange(64), rnd.randint(0, 1))
    if k == "ctx":
        return (k, rnd.randint(0, 1), rnd.randrange(64), rnd.choice([None, 0, 8]))
    if k == "reset":
        return (k, rnd.randint(0, 1))
    return (k, rnd.choice([0, 1, 2]), rnd.choice([0, 3, 6, 32]))


def sequence_for_seed(seed: int) -> tuple[int, str, list[Op]]:
    """Seed N: bitness/profile PARAMS[N % 4]; `random.Random(N)` picks the length (1-50)
    and every operation. The same numbering found the issue-11 violations (seeds 1135,
    1323, 8216, 104480, 111929, 117796)."""
    bitness, profile = PARAMS[seed % len(PARAMS)]
    rnd = random.Random(seed)
    n = rnd.randint(1, MAX_SEQUENCE_LENGTH)
    return bitness, profile, [sample_op(rnd) for _ in range(n)]


@dataclass
class CampaignFigures:
    """Totals over a batch of seeds (added up across worker processes)."""

    sequences: int = 0
    operations: int = 0
    hypercalls: int = 0
    violations: list[tuple[int, str]] = field(default_factory=list)

    def add(self, other: CampaignFigures) -> None:
        self.sequences += other.sequences
        self.operations += other.operations
        self.hypercalls += other.hypercalls
        self.violations += other.violations


def run_seeds(seeds: Iterable[int]) -> CampaignFigures:
    """Check the sequence of every seed; violations as (seed, message)."""
    figs = CampaignFigures()
    for seed in seeds:
        bitness, profile, ops = sequence_for_seed(seed)
        res = check_sequence(bitness, profile, ops)
        figs.sequences += 1
        figs.operations += res.operations
        figs.hypercalls += res.hypercalls
        if res.violation is not None:
            figs.violations.append((seed, f"{bitness}-bit, {profile}: {res.violation}"))
    return figs


__all__ = ["COMMON_FLAGS", "EXTRA_FLAGS", "PARAMS", "SLOTS", "CampaignFigures", "Op",
           "SequenceResult", "Snap", "Violation", "World", "check_sequence", "counts",
           "failure_diff", "run_seeds", "sample_op", "sequence_for_seed", "snapshot"]
