# SPDX-License-Identifier: MIT
"""The toolstack: domain builder, dom0 builder, migration restore, pinning orders and the
placement experiment. Only the hypervisor's public operations are used (hypercalls and
foreign-mapping writes), except by the dom0 builder, which models Xen's own code.

```python
from pvlab import Xen
from pvlab.toolstack import build_domain
res = build_domain(Xen("4.19", "8GiB", placement="high-first"), kernel="pae_yes")
res.steps        # [(step name, Outcome), ...]; res.relocated == (old MFN, new MFN)
```
"""

from __future__ import annotations

from pvlab.toolstack.builder import BUILD_STEPS, BuildOptions, BuildResult, build_domain
from pvlab.toolstack.dom0 import DOM0_STEPS, Dom0Options, build_dom0
from pvlab.toolstack.flow import FlowResult
from pvlab.toolstack.kernel import KERNEL_KINDS, KernelImage, PaeMode, kernel_image
from pvlab.toolstack.pinning import PinningComparison, TableSet, compare_pinning_orders
from pvlab.toolstack.placement import (
    PlacementPoint,
    PlacementSweep,
    placement_experiment,
    placement_sweep,
)
from pvlab.toolstack.restore import RestoreOptions, RestoreResult, restore_domain

__all__ = ["BUILD_STEPS", "BuildOptions", "BuildResult", "DOM0_STEPS", "Dom0Options",
           "FlowResult", "KERNEL_KINDS", "KernelImage", "PaeMode", "PinningComparison",
           "PlacementPoint", "PlacementSweep", "RestoreOptions", "RestoreResult", "TableSet",
           "build_dom0",
           "build_domain", "compare_pinning_orders", "kernel_image", "placement_experiment",
           "placement_sweep", "restore_domain"]
