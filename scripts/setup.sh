#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Idempotent set-up used by `make lab` and `make test`:
#   1. Debian packages (when root or passwordless sudo; otherwise prints what to install),
#   2. a virtual environment in .venv with pvlab installed editable with all extras.
# Usage: scripts/setup.sh [--lab | --test]   (default --test: everything the test suite needs)
# Environment: PVLAB_SKIP_APT=1 skips step 1; PYTHON picks the interpreter (default python3);
#              VENV picks the venv folder (default .venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=test
for arg in "$@"; do
    case "$arg" in
        --lab) mode=lab ;;
        --test) mode=test ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg (use --lab or --test)" >&2; exit 2 ;;
    esac
done

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS="lab,test,browser"

say() { printf '[setup] %s\n' "$*"; }

# ---- 1. Debian packages ----------------------------------------------------------------------
# graphviz: `dot` for the pagetable pictures (pvlab falls back to pure-Python SVG without it).
# The rest is for the test suite: Debian's chromium for the browser test (never `playwright
# install`), QEMU + a 32-bit-capable toolchain + `apt-get source` for the real-Xen oracle tests.
lab_debs=(graphviz)
test_debs=(graphviz chromium qemu-system-x86 gcc-multilib flex bison seabios ipxe-qemu
           build-essential python3-dev dpkg-dev)
if [[ $mode == lab ]]; then wanted=("${lab_debs[@]}"); else wanted=("${test_debs[@]}"); fi

# A Python without ensurepip (Debian's python3 without python3-venv) cannot make a venv.
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    wanted+=(python3-venv)
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in "${wanted[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || missing+=("$pkg")
    done
fi

if [[ ${#missing[@]} -gt 0 && -z ${PVLAB_SKIP_APT:-} ]]; then
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
            sudo_cmd=(sudo -n)
        else
            sudo_cmd=(none)
        fi
    fi
    if [[ ${sudo_cmd[*]-} == none ]]; then
        say "Not root and no passwordless sudo: not installing Debian packages."
        say "Ask an administrator to run:"
        say "    sudo apt-get install --no-install-recommends ${missing[*]}"
        say "Continuing: without graphviz pvlab draws with its pure-Python SVG fallback;"
        say "tests that need chromium or QEMU skip locally (they always run in CI)."
    else
        say "Installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        "${sudo_cmd[@]}" apt-get update -qq
        "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        say "Debian packages installed."
    fi
elif [[ ${#missing[@]} -gt 0 ]]; then
    say "PVLAB_SKIP_APT is set: not installing ${missing[*]}"
fi

# ---- 2. virtual environment ------------------------------------------------------------------
if [[ -x $VENV/bin/python ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "$VENV is broken (its base Python moved?): recreating it."
    rm -rf "$VENV"
fi
if [[ ! -x $VENV/bin/python ]]; then
    say "Creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "pvlab needs Python 3.11 or newer; $VENV has $("$VENV/bin/python" --version 2>&1)."
    say "Fix: install Python 3.11+, remove $VENV and run again (or set PYTHON=python3.11)."
    exit 1
fi

stamp_file=$VENV/.pvlab-setup-stamp
stamp=$( { cat pyproject.toml; echo "extras=$EXTRAS"; "$VENV/bin/python" --version; } \
         | sha256sum | cut -d' ' -f1)
if [[ -f $stamp_file && $(cat "$stamp_file") == "$stamp" && -x $VENV/bin/pvlab ]]; then
    say "$VENV is up to date."
else
    say "Installing pvlab and its dependencies into $VENV (about a minute the first time)..."
    # This machine's pip configuration may name local indexes that lack most packages; pip
    # then warns once per package. Drop only that noise, keep every other line and the status.
    set +o pipefail
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -e ".[$EXTRAS]" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
    pip_rc=${PIPESTATUS[0]}
    set -o pipefail
    if [[ $pip_rc -ne 0 ]]; then
        say "pip install failed (exit $pip_rc). Check the network/proxy, then run again."
        exit "$pip_rc"
    fi
    # nbgrader (a test dependency: the exercises are checked with it) adds instructor menus
    # to JupyterLab; learners do not need them. Instructors: `jupyter labextension enable
    # @jupyter/nbgrader` and `jupyter server extension enable nbgrader.server_extensions.formgrader`.
    "$VENV/bin/jupyter" labextension disable --level=sys_prefix @jupyter/nbgrader \
        >/dev/null 2>&1 || true
    for ext in formgrader assignment_list course_list validate_assignment; do
        "$VENV/bin/jupyter" server extension disable --sys-prefix \
            "nbgrader.server_extensions.$ext" >/dev/null 2>&1 || true
    done
    echo "$stamp" > "$stamp_file"
    say "pvlab and its dependencies are installed in $VENV."
fi
