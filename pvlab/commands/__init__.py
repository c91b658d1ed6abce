# SPDX-License-Identifier: MIT
"""Sub-commands of the `pvlab` command line, one module each."""
