# SPDX-License-Identifier: MIT
import sys

from pvlab.cli import main

sys.exit(main())
