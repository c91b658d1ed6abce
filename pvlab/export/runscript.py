# SPDX-License-Identifier: MIT
"""The `run` script of an exported regression test (python3, standard library only).

It is written into the export as is; `@XEN_ARGS@` and `@ERRNO@` are filled in by
:mod:`pvlab.export.writer`.
"""

RUN_SCRIPT = r'''#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Boot this regression test's probe kernel as dom0 of a Xen under QEMU and check each step.

    ./run --xen PATH/TO/xen/xen [--timeout SECONDS] [--qemu qemu-system-x86_64] [--log FILE]

Prints one line per step and ends with an XTF-style verdict line:
"Test result: SUCCESS", "Test result: FAILURE (...)" naming the first mismatching step, or
"Test result: ERROR (...)" when the test could not run. Exit status 0, 1 or 2 accordingly.
Written by `pvlab export`; needs python3, make, gcc (with 32-bit support for a 32-bit probe)
and qemu-system-x86_64, not pvlab.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
XEN_ARGS = "@XEN_ARGS@"
ERRNO = @ERRNO@
ADDR_BITS = (1 << 40) - 1
FLAG_BITS = 0xFFF0_0000_0000_0FFF


GNTST = {0: "ok", -1: "GNTST_general_error", -2: "GNTST_bad_domain", -3: "GNTST_bad_gntref",
         -4: "GNTST_bad_handle", -5: "GNTST_bad_virt_addr", -6: "GNTST_bad_dev_addr",
         -7: "GNTST_no_device_space", -8: "GNTST_permission_denied", -9: "GNTST_bad_page",
         -10: "GNTST_bad_copy_arg", -11: "GNTST_address_too_big", -12: "GNTST_eagain",
         -13: "GNTST_no_space"}


def errno_name(rc):
    if rc == 0:
        return "ok"
    return ERRNO.get(str(-rc), "E%d" % -rc)


def build(bits):
    probe = os.path.join(HERE, "probe%d" % bits)
    result = subprocess.run(["make", "-s", "-C", HERE, "probe%d" % bits],
                            capture_output=True, text=True)
    if result.returncode != 0 or not os.path.isfile(probe):
        raise RuntimeError("building the probe failed: " + result.stderr.strip()[-400:])
    return probe


def boot(qemu, xen, probe, timeout):
    cmd = [qemu, "-machine", "q35,accel=tcg", "-cpu", "max", "-m", "3G", "-smp", "1",
           "-nographic", "-no-reboot", "-monitor", "none", "-serial", "stdio",
           "-kernel", xen, "-initrd", probe, "-append", XEN_ARGS]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.2)
        out.seek(0)
        return out.read().decode("utf-8", "replace")


def parse(text):
    """Per step: rc or value read back, and the Xen lines printed while it ran."""
    steps, frames, pending, last = {}, {}, [], []
    info = {"done": False, "ended": False, "setup_failed": None}
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        m = re.match(r"^\(XEN\) (?:\[[ \d.]+\] )?(.*)$", line)
        if m:
            pending.append(m.group(1))
            last = (last + [m.group(1)])[-10:]
            continue
        if line.startswith("PVLAB: done"):
            info["done"] = True
            continue
        m = re.search(r"PVLAB: scenario \d+ (\S+)(?: (.*))?$", line)
        if not m:
            continue
        what, rest = m.group(1), m.group(2) or ""
        if what == "frame":
            idx, _, mfn = rest.partition(" mfn=")
            frames[int(idx)] = int(mfn, 16)
        elif what == "setup-failed":
            info["setup_failed"] = rest
        elif what == "step":
            num, _, result = rest.partition(" ")
            step = {"log": pending}
            if result.startswith("rc="):
                fields = dict(w.split("=", 1) for w in result.split() if "=" in w)
                step["rc"] = int(fields["rc"])
                if "gntst" in fields:
                    step["gntst"] = int(fields["gntst"])
            elif result == "lost":
                step["lost"] = True
            elif result.startswith("value="):
                step["value"] = int(result[6:], 16)
            steps[int(num)] = step
        elif what == "end":
            info["ended"] = True
        pending = []
    info["last"] = last
    return steps, frames, info


def entry_problems(check, value, frames):
    bad = []
    if check.get("value") is not None:
        want = check["value"]
        if check.get("value_frame") is not None and check["value_frame"] in frames:
            want = (want & ~(ADDR_BITS << 12)) | (frames[check["value_frame"]] << 12)
        if value != want:
            bad.append("value %#x != %#x" % (value, want))
    want_mfn = None
    if check.get("to") is not None:
        want_mfn = frames.get(check["to"])
    elif check.get("mfn") is not None:
        want_mfn = check["mfn"]
        if check.get("mfn_frame") is not None and check["mfn_frame"] in frames:
            want_mfn = frames[check["mfn_frame"]]
    if (check.get("to") is not None or check.get("mfn") is not None) and \
            (value >> 12) & ADDR_BITS != want_mfn:
        bad.append("points elsewhere")
    if check.get("flags") is not None and value & FLAG_BITS != check["flags"]:
        bad.append("flags differ")
    if check.get("present") is not None and bool(value & 1) != bool(check["present"]):
        bad.append("present differs")
    return bad


def result_of(step, got, frames):
    if step["kind"] == "entry":
        if "value" not in got:
            return "read failed (%s)" % errno_name(got.get("rc", 0)), None
        bad = entry_problems(step["check"], got["value"], frames)
        return ("failed" if bad else "held"), got["value"]
    if got.get("lost"):
        return "domain_crashed", None
    rc = got.get("rc", 0)
    if step["kind"] == "grant":
        if rc < 0:
            return "read failed (%s)" % errno_name(rc), None
        bad = [k for k, bit in (("reading", 8), ("writing", 16))
               if step["check"].get(k) is not None and bool(rc & bit) != step["check"][k]]
        return ("failed" if bad else "held"), None
    if "gntst" in got and rc == 0:
        return GNTST.get(got["gntst"], "GNTST(%d)" % got["gntst"]), None
    if step["kind"] == "write" and rc != 0:
        return "EFAULT", None
    return errno_name(rc), None


def first_message(lines):
    for line in lines:
        text = re.sub(r"^\S+\.c:\d+:", "", line).strip()
        if text:
            return text
    return ""


def main():
    ap = argparse.ArgumentParser(description="Run this exported pvlab scenario on a Xen.")
    ap.add_argument("--xen", required=True, help="the Xen ELF image (xen/xen of a build)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    ap.add_argument("--qemu", default="qemu-system-x86_64", help="QEMU binary")
    ap.add_argument("--log", help="also save the serial log in this file")
    args = ap.parse_args()
    with open(os.path.join(HERE, "expected.json")) as f:
        test = json.load(f)
    print("%s: %s (expectations of Xen %s)" % (test["name"], test["description"], test["profile"]))
    try:
        if not os.path.isfile(args.xen):
            raise RuntimeError("--xen %s: no such file" % args.xen)
        qemu = shutil.which(args.qemu)
        if qemu is None:
            raise RuntimeError("%s is not installed" % args.qemu)
        probe = build(test["probe_bits"])
        log = boot(qemu, args.xen, probe, args.timeout)
    except (OSError, RuntimeError) as err:
        print("Test result: ERROR (%s)" % err)
        return 2
    if args.log:
        with open(args.log, "w") as f:
            f.write(log)
    steps, frames, info = parse(log)
    if info["setup_failed"]:
        print("Test result: ERROR (probe set-up failed: %s)" % info["setup_failed"])
        return 2
    first = None
    for step in test["steps"]:
        head = "step %d %s" % (step["step"], step["op"])
        if step.get("skip"):
            print("%-28s SKIP     %s" % (head, step["skip"]))
            continue
        got = steps.get(step["step"])
        if got is None:
            last = info["last"][-1] if info["last"] else "no Xen output"
            print("%-28s NOT RUN  (last Xen line: %s)" % (head, last))
            if first is None:
                first = "%s: expected %s, but it did not run (last Xen line: %s)" % (
                    head, step["expect"], last)
            continue
        result, value = result_of(step, got, frames)
        shown = result if value is None else "%s (%#x)" % (result, value)
        verdict = "PASS" if result == step["expect"] else "FAIL"
        xen_line = first_message(got["log"])
        print(("%-28s %-8s expected %-8s got %-16s %s" % (
            head, verdict, step["expect"], shown, ("xen: " + xen_line) if xen_line else "")
               ).rstrip())
        if verdict == "FAIL" and first is None:
            first = "%s: expected %s, got %s" % (head, step["expect"], shown)
    if first is None and not info["done"]:
        last = info["last"][-1] if info["last"] else "no Xen output"
        print("Test result: ERROR (the probe did not finish; last Xen line: %s)" % last)
        return 2
    if first is not None:
        print("Test result: FAILURE: %s" % first)
        return 1
    print("Test result: SUCCESS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
