# SPDX-License-Identifier: MIT
"""`pvlab schema`: the JSON Schema of scenario files, generated from the step registry."""

from __future__ import annotations

import argparse
import json

from pvlab.scenario.schema import scenario_schema


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of scenario files",
                       description="Print the JSON Schema of scenario files, generated from "
                                   "the step registry (docs/scenario.schema.json is a copy). "
                                   "Editors use it to complete and check scenario files.")
    p.set_defaults(func=main)


def schema_text() -> str:
    return json.dumps(scenario_schema(), indent=2, ensure_ascii=False) + "\n"


def main(args: argparse.Namespace) -> int:
    print(schema_text(), end="")
    return 0
