# SPDX-License-Identifier: MIT
"""`pvlab fuzz`: differential fuzzing of the model against real Xen (docs/fuzzing.md).

- :mod:`pvlab.fuzz.generate`: seeded random scenarios (scenario files, as mappings);
- :mod:`pvlab.fuzz.oracle`: run a batch in pvlab and on real Xen in one QEMU boot, rebooting
  after a Xen crash;
- :mod:`pvlab.fuzz.known`: the known differences (known.yaml) and their filter;
- :mod:`pvlab.fuzz.shrink`: delta debugging of a finding, candidates batched per boot;
- :mod:`pvlab.fuzz.loop`: the fuzzing loop, findings and figures.

The package computes; only pvlab/commands/fuzz.py prints.
"""
