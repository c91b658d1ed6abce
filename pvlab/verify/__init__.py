# SPDX-License-Identifier: MIT
"""`pvlab verify`: replay scenarios on the real Xen hypervisor under QEMU and compare.

plan.py (scenario -> replay plan), encode.py (plan -> C header for the probe kernel),
boot.py (build the probe, boot Xen in QEMU), logparse.py (serial log -> results),
compare.py (pvlab's results beside Xen's), xenbuild.py (find or build the hypervisors).
"""
