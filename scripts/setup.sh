#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Idempotent set-up used by `make lab`, `make test` and `make hub`:
#   1. Debian packages (when root or passwordless sudo; otherwise prints what to install),
#      installed in the background while step 2 runs;
#   2. a virtual environment in .venv with pvlab installed editable with the extras the mode
#      needs, with `uv` (fetched from PyPI into the venv) when it can, else pip;
#   3. (--hub, --test) configurable-http-proxy from npm into the venv, for `pvlab hub`.
# Usage: scripts/setup.sh [--lab | --test | --hub]   (default --test: all the test suite needs)
# Environment: PVLAB_SKIP_APT=1 skips step 1; PVLAB_NO_UV=1 uses pip instead of uv;
#              PYTHON picks the interpreter (default python3); VENV the venv folder (.venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=test
for arg in "$@"; do
    case "$arg" in
        --lab) mode=lab ;;
        --test) mode=test ;;
        --hub) mode=hub ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg (use --lab, --test or --hub)" >&2; exit 2 ;;
    esac
done

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
case $mode in
    lab) EXTRAS="lab" ;;
    hub) EXTRAS="lab,hub" ;;
    test) EXTRAS="lab,test,browser,hub" ;;
esac
# configurable-http-proxy, the proxy JupyterHub starts (npm registry).
CHP_VERSION=${CHP_VERSION:-5}

say() { printf '[setup] %s\n' "$*"; }
t_start=$(date +%s)

apt_pid=
apt_log=
# Wait for the background apt-get (if any); stop with its log if it failed.
wait_apt() {
    [[ -n $apt_pid ]] || return 0
    local rc=0
    wait "$apt_pid" || rc=$?
    apt_pid=
    if [[ $rc -ne 0 ]]; then
        say "apt-get failed (exit $rc):"
        tail -n 20 "$apt_log" >&2
        exit "$rc"
    fi
    say "Debian packages installed."
}

# ---- 1. Debian packages ----------------------------------------------------------------------
# graphviz: `dot` for the pagetable pictures (pvlab falls back to pure-Python SVG without it).
# The rest is for the test suite: Debian's chromium for the browser test (never `playwright
# install`), QEMU + a 32-bit-capable toolchain + `apt-get source` for the real-Xen oracle tests.
# nodejs/npm: only where `npm` is missing, for configurable-http-proxy (pvlab hub and its tests).
lab_debs=(graphviz)
test_debs=(graphviz chromium qemu-system-x86 gcc-multilib flex bison seabios ipxe-qemu
           build-essential python3-dev dpkg-dev)
case $mode in
    lab) wanted=("${lab_debs[@]}") ;;
    hub) wanted=("${lab_debs[@]}") ;;
    test) wanted=("${test_debs[@]}") ;;
esac
if [[ $mode != lab ]] && ! command -v npm >/dev/null 2>&1; then
    wanted+=(nodejs npm)
fi

# A Python without ensurepip (Debian's python3 without python3-venv) cannot make a venv:
# then apt must finish before step 2 (otherwise it runs in the background, beside step 2).
apt_first=
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    wanted+=(python3-venv)
    apt_first=1
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
        say "Installing Debian packages (in the background): ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt_log=$(mktemp "${TMPDIR:-/tmp}/pvlab-apt.XXXXXX")
        ( "${sudo_cmd[@]}" apt-get update -qq \
          && "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
        ) >"$apt_log" 2>&1 &
        apt_pid=$!
        if [[ -n $apt_first ]]; then wait_apt; fi
    fi
elif [[ ${#missing[@]} -gt 0 ]]; then
    say "PVLAB_SKIP_APT is set: not installing ${missing[*]}"
fi

# ---- 2. virtual environment ------------------------------------------------------------------
if [[ -x $VENV/bin/python ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "$VENV is broken (its base Python moved?): recreating it."
    rm -rf "$VENV"
fi
# uv outside the venv, for `make lab`: on PATH, or fetched once with the system pip into
# ~/.cache/pvlab/uv (about 15 MB). With it the venv is made by `uv venv --seed` (about a
# second, where `python -m venv` spends 10-15 s installing pip through ensurepip on a busy
# machine) and uv does not have to be installed into the venv first. `make test` and
# `make hub` keep the plain venv (CI's path).
outer_uv=
if [[ $mode == lab && -z ${PVLAB_NO_UV:-} && ! -x $VENV/bin/python ]]; then
    uv_tools=${XDG_CACHE_HOME:-$HOME/.cache}/pvlab/uv
    if command -v uv >/dev/null 2>&1; then
        outer_uv=$(command -v uv)
    elif [[ -x $uv_tools/bin/uv ]] && "$uv_tools/bin/uv" --version >/dev/null 2>&1; then
        outer_uv=$uv_tools/bin/uv
    elif "$PYTHON" -m pip --version >/dev/null 2>&1 \
            && "$PYTHON" -m pip install --quiet --disable-pip-version-check --target \
               "$uv_tools" uv >/dev/null 2>&1 && [[ -x $uv_tools/bin/uv ]]; then
        outer_uv=$uv_tools/bin/uv
    fi
fi
if [[ ! -x $VENV/bin/python ]]; then
    say "Creating $VENV with $("$PYTHON" --version 2>&1)${outer_uv:+ (uv venv)}"
    if [[ -n $outer_uv ]] && "$outer_uv" venv --quiet --seed --python "$(command -v "$PYTHON")" "$VENV" \
            >/dev/null 2>&1; then
        :
    else
        rm -rf "$VENV"
        outer_uv=
        "$PYTHON" -m venv "$VENV"
    fi
fi

if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "pvlab needs Python 3.11 or newer; $VENV has $("$VENV/bin/python" --version 2>&1)."
    say "Fix: install Python 3.11+, remove $VENV and run again (or set PYTHON=python3.11)."
    exit 1
fi

# The stamp: a hash of pyproject.toml and the Python version, then the extras installed.
# A mode is up to date when the hash matches and its extras are among those installed.
stamp_file=$VENV/.pvlab-setup-stamp
hash=$( { cat pyproject.toml setup.py 2>/dev/null; "$VENV/bin/python" --version; } \
        | sha256sum | cut -d' ' -f1)
installed=
if [[ -f $stamp_file ]]; then
    read -r old_hash installed < "$stamp_file" || true
    [[ ${old_hash:-} == "$hash" ]] || installed=
fi
need=()
for extra in ${EXTRAS//,/ }; do
    [[ ,$installed, == *,$extra,* ]] || need+=("$extra")
done
if [[ ${#need[@]} -eq 0 && -x $VENV/bin/pvlab ]]; then
    say "$VENV is up to date."
else
    all=$(printf '%s\n' ${installed//,/ } ${EXTRAS//,/ } | sort -u | paste -sd, -)
    # uv installs the ~170 packages in parallel: several times faster than pip on a fresh
    # machine. It comes from PyPI into the venv itself; pip remains the fallback.
    uv=
    if [[ -z ${PVLAB_NO_UV:-} ]]; then
        if [[ -n $outer_uv ]]; then
            uv=$outer_uv
        elif [[ -x $VENV/bin/uv ]]; then
            uv=$VENV/bin/uv
        elif "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv \
                >/dev/null 2>&1; then
            uv=$VENV/bin/uv
        else
            say "could not install uv from PyPI: using pip."
        fi
    fi
    tool=pip; [[ -z $uv ]] || tool=uv
    say "Installing pvlab[$all] and its dependencies into $VENV with $tool..."
    set +o pipefail
    if [[ -n $uv ]]; then
        "$uv" pip install --quiet --python "$VENV/bin/python" -e ".[$all]" 2>&1
    else
        # This machine's pip configuration may name local indexes that lack most packages;
        # pip then warns once per package. Drop only that noise, keep every other line.
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            -e ".[$all]" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
    fi
    pip_rc=${PIPESTATUS[0]}
    set -o pipefail
    if [[ $pip_rc -ne 0 ]]; then
        say "$tool install failed (exit $pip_rc). Check the network/proxy, then run again."
        exit "$pip_rc"
    fi
    # nbgrader (a test dependency: the exercises are checked with it) adds instructor menus
    # to JupyterLab; learners do not need them. Instructors: `jupyter labextension enable
    # @jupyter/nbgrader` and `jupyter server extension enable nbgrader.server_extensions.formgrader`.
    if [[ ,$all, == *,test,* ]]; then
        "$VENV/bin/jupyter" labextension disable --level=sys_prefix @jupyter/nbgrader \
            >/dev/null 2>&1 || true
        for ext in formgrader assignment_list course_list validate_assignment; do
            "$VENV/bin/jupyter" server extension disable --sys-prefix \
                "nbgrader.server_extensions.$ext" >/dev/null 2>&1 || true
        done
    fi
    echo "$hash $all" > "$stamp_file"
    say "pvlab and its dependencies are installed in $VENV."
fi

# ---- 3. configurable-http-proxy (pvlab hub) ----------------------------------------------------
# Installed into the venv (no root needed): $VENV/node, linked as $VENV/bin/configurable-http-proxy.
wait_apt
if [[ $mode != lab ]]; then
    chp=$VENV/bin/configurable-http-proxy
    if [[ -x $chp ]] && "$chp" --version >/dev/null 2>&1; then
        :
    elif ! command -v npm >/dev/null 2>&1; then
        say "npm is missing: \`pvlab hub\` needs configurable-http-proxy from npm."
        say "Ask an administrator to run: sudo apt-get install --no-install-recommends nodejs npm"
        say "(tests that start the hub skip locally without it; in CI they fail)."
    else
        say "Installing configurable-http-proxy@$CHP_VERSION from npm into $VENV/node"
        npm install --silent --no-audit --no-fund --prefix "$VENV/node" \
            "configurable-http-proxy@$CHP_VERSION" >/dev/null 2>&1 \
            || { say "npm install configurable-http-proxy failed; run it by hand to see why."; exit 1; }
        ln -sf "$(cd "$VENV/node/node_modules/.bin" && pwd)/configurable-http-proxy" "$chp"
    fi
fi
say "set-up done in $(( $(date +%s) - t_start )) s."
