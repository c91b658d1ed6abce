#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test suite, as `make test` runs it (after scripts/setup.sh):
#   ruff, then mypy on the package, then pytest on the package tests, then nbmake on every
#   notebook folder.
# Environment (all optional; the Makefile passes its variables):
#   LINT_PATHS      folders ruff checks            (default: pvlab tests benchmarks)
#   TEST_TARGETS    pytest paths for package tests (default: tests)
#   NOTEBOOK_DIRS   folders whose notebooks nbmake executes (default: notebooks solutions)
#   PYTEST_ARGS     extra pytest arguments, e.g. "-k doctor" or "-x"
# pytest's exit code 5 ("no tests collected") counts as success.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=${VENV:-.venv}
PY=$VENV/bin/python
read -r -a lint_paths <<< "${LINT_PATHS:-pvlab tests benchmarks}"
read -r -a test_targets <<< "${TEST_TARGETS:-tests}"
read -r -a notebook_dirs <<< "${NOTEBOOK_DIRS:-notebooks solutions}"
read -r -a pytest_args <<< "${PYTEST_ARGS:-}"

existing() { for p in "$@"; do [[ -e $p ]] && printf '%s\n' "$p"; done; return 0; }

run_pytest() {
    local rc=0
    "$PY" -m pytest -q "${pytest_args[@]}" "$@" || rc=$?
    if [[ $rc -eq 5 ]]; then
        echo "[test] pytest collected no tests in: $*"
        return 0
    fi
    return "$rc"
}

mapfile -t lint < <(existing "${lint_paths[@]}")
if [[ ${#lint[@]} -gt 0 ]]; then
    echo "[test] ruff check ${lint[*]}"
    "$VENV/bin/ruff" check "${lint[@]}"
fi

# The package is typed; [tool.mypy] in pyproject.toml holds the settings.
echo "[test] mypy pvlab"
"$VENV/bin/mypy" pvlab

mapfile -t targets < <(existing "${test_targets[@]}")
if [[ ${#targets[@]} -gt 0 ]]; then
    echo "[test] pytest ${targets[*]}"
    run_pytest "${targets[@]}"
fi

nb_dirs=()
for d in "${notebook_dirs[@]}"; do
    if [[ -d $d ]] && [[ -n $(find "$d" -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' \
                                -print -quit) ]]; then
        nb_dirs+=("$d")
    fi
done
if [[ ${#nb_dirs[@]} -gt 0 ]]; then
    echo "[test] pytest --nbmake ${nb_dirs[*]}"
    run_pytest --nbmake "${nb_dirs[@]}"
fi
echo "[test] all test stages passed"
