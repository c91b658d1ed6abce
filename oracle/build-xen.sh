#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build the Xen hypervisors `pvlab verify` runs against, from Debian's `xen` source package.
#
#   oracle/build-xen.sh [4.17|4.19|release|all]      (default: all = 4.17 and 4.19)
#
# Produces oracle/build/xen-<srcversion>-<variant>/xen (the uncompressed ELF QEMU boots):
#   4.17     Debian's source as is (Xen 4.17.x, no PAE-extended-CR3 check)
#   4.19     the same plus oracle/xen-patches/*.patch (restores the check as Xen 4.19 has it)
#   release  Debian's source as is, without CONFIG_DEBUG (a production build: assertions
#            compiled out, no gdprintk lines); plays profile 4.17 with xen_build: release
# All are configured with CONFIG_PV32=y; 4.17 and 4.19 with CONFIG_DEBUG=y.  Results are
# cached, keyed by the source version, the patch contents and this script; a second run is
# instant.
#
# Source entries are derived from the machine's own apt sources (no host is named here) and
# kept in a private apt configuration under oracle/build/apt, so the system is not changed.
# Needs: apt-get, dpkg-source (dpkg-dev), gcc, make, python3, flex, bison.
# Set PVLAB_APT_INSTALL=1 to apt-get install missing build tools first (needs root; CI does).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build="${PVLAB_ORACLE_BUILD:-$here/build}"
patches="$here/xen-patches"
want="${1:-all}"
jobs="${PVLAB_BUILD_JOBS:-2}"

say() { printf '[build-xen] %s\n' "$*"; }
die() { printf '[build-xen] error: %s\n' "$*" >&2; exit 1; }

case "$want" in 4.17|4.19|release|all) ;; *) die "unknown variant '$want' (use 4.17, 4.19, release or all)";; esac

need_tools() {
    missing=""
    for t in gcc make python3 flex bison dpkg-source apt-get; do
        command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
    done
    if [ -n "$missing" ] && [ "${PVLAB_APT_INSTALL:-0}" = 1 ]; then
        say "installing build tools:$missing"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            gcc make python3 flex bison dpkg-dev >/dev/null
        missing=""
    fi
    [ -z "$missing" ] || die "missing tools:$missing (apt-get install gcc make python3 flex bison dpkg-dev)"
}

# --- private apt configuration with deb-src entries derived from the machine's sources ---
aptdir="$build/apt"
apt_private() {
    cmd=$1; shift
    "$cmd" -q -o Dir::Etc::SourceList=/dev/null \
        -o Dir::Etc::SourceParts="$aptdir/sources.list.d" \
        -o Dir::State::Lists="$aptdir/lists" \
        -o Dir::Cache="$aptdir/cache" \
        -o APT::Sandbox::User=root "$@"
}

make_src_entries() {
    mkdir -p "$aptdir/sources.list.d" "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
    out="$aptdir/sources.list.d/derived.sources"
    : > "$out"
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822 stanzas: keep every field, make the stanza a source-package entry
        sed -e 's/^Types:.*$/Types: deb-src/' "$f" >> "$out"
        printf '\n' >> "$out"
    done
    list="$aptdir/sources.list.d/derived.list"
    : > "$list"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n -e 's/^[[:space:]]*deb\([[:space:]]\)/deb-src\1/p' "$f" >> "$list"
    done
    [ -s "$out" ] || [ -s "$list" ] || die "no apt sources found in /etc/apt to derive deb-src entries from"
}

fetch_source() {
    make_src_entries
    say "stage 1/4: apt-get update (source indexes only, private config in $aptdir)"
    apt_private apt-get update >"$build/apt-update.log" 2>&1 || die "apt-get update failed, see $build/apt-update.log"
    versions=$(apt_private apt-cache showsrc xen 2>/dev/null | sed -n 's/^Version: //p' | sort -Vr | uniq)
    [ -n "$versions" ] || die "no 'xen' source package found by apt-cache showsrc"
    # newest first; a version listed in an index may be missing from its pool (mirrors lag),
    # so fall back to the next one
    for version in $versions; do
        src="$build/src-$version"
        if [ -f "$src/.extracted" ]; then
            say "stage 2/4: source xen $version already extracted in $src"
            return
        fi
        say "stage 2/4: apt-get source xen=$version (about 5 MB download)"
        dl="$build/dl-$version"
        rm -rf "$dl" "$src"
        mkdir -p "$dl"
        if (cd "$dl" && apt_private apt-get source --download-only "xen=$version" \
                >"$build/apt-source.log" 2>&1); then
            dsc=$(ls "$dl"/*.dsc | head -1)
            dpkg-source --no-check -x "$dsc" "$src" >"$build/dpkg-source.log" 2>&1 \
                || die "dpkg-source -x failed, see $build/dpkg-source.log"
            touch "$src/.extracted"
            rm -rf "$dl"
            return
        fi
        say "  xen $version could not be downloaded (see $build/apt-source.log), trying an older one"
        rm -rf "$dl"
    done
    die "no version of the 'xen' source package could be downloaded"
}

patch_hash() {
    if [ "$1" = 4.19 ]; then
        cat "$patches"/*.patch | sha256sum | cut -c1-16
    else
        echo none
    fi
}

build_variant() {
    variant=$1
    out="$build/xen-$version-$variant"
    key="src=$version patch=$(patch_hash "$variant") script=$(sha256sum "$0" | cut -c1-16)"
    if [ -f "$out/xen" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$key" ]; then
        say "variant $variant: cached ($out/xen)"
        return
    fi
    tree="$build/tree-$variant"
    say "stage 3/4 [$variant]: preparing tree $tree"
    rm -rf "$tree"
    mkdir -p "$tree"
    # the hypervisor build needs xen/, config/ and the top-level make files, not tools/ or docs/
    (cd "$src" && tar cf - --exclude=./tools --exclude=./docs --exclude=./stubdom .) \
        | (cd "$tree" && tar xf -)
    if [ "$variant" = 4.19 ]; then
        for p in "$patches"/*.patch; do
            say "  applying $(basename "$p")"
            patch -d "$tree" -p1 --quiet <"$p" || die "patch $(basename "$p") does not apply to xen $version"
        done
    fi
    log="$build/build-$variant.log"
    if [ "$variant" = release ]; then debug_line='# CONFIG_DEBUG is not set'; else debug_line='CONFIG_DEBUG=y'; fi
    say "stage 4/4 [$variant]: make -C xen defconfig, CONFIG_PV32=y, $debug_line, make -j$jobs (about 1-3 min)"
    {
        make -C "$tree/xen" defconfig
        sed -i -e '/^CONFIG_PV32=/d' -e '/CONFIG_PV32 is not set/d' \
            -e '/^CONFIG_DEBUG=/d' -e '/CONFIG_DEBUG is not set/d' "$tree/xen/.config"
        printf 'CONFIG_PV32=y\n%s\n' "$debug_line" >>"$tree/xen/.config"
        make -C "$tree/xen" olddefconfig
    } >"$log" 2>&1 || die "configuring failed, see $log"
    make -C "$tree/xen" -j"$jobs" >>"$log" 2>&1 &
    pid=$!
    start=$(date +%s)
    while kill -0 "$pid" 2>/dev/null; do
        sleep 10
        if kill -0 "$pid" 2>/dev/null; then
            n=$(grep -c '^ *CC ' "$log" || true)
            say "  [$variant] compiling... $n objects, $(( $(date +%s) - start )) s"
        fi
    done
    wait "$pid" || die "make failed, see $log"
    grep -q '^CONFIG_PV32=y' "$tree/xen/.config" || die "CONFIG_PV32 did not stick in $tree/xen/.config"
    if [ "$variant" = release ]; then
        ! grep -q '^CONFIG_DEBUG=y' "$tree/xen/.config" || die "CONFIG_DEBUG is still on in $tree/xen/.config"
    else
        grep -q '^CONFIG_DEBUG=y' "$tree/xen/.config" || die "CONFIG_DEBUG did not stick in $tree/xen/.config"
    fi
    mkdir -p "$out"
    cp "$tree/xen/xen" "$out/xen"
    cp "$tree/xen/.config" "$out/config"
    printf '%s\n' "$key" >"$out/stamp"
    rm -rf "$tree"
    say "variant $variant: built in $(( $(date +%s) - start )) s -> $out/xen"
}

mkdir -p "$build"
need_tools
fetch_source
case "$want" in
    all) build_variant 4.17; build_variant 4.19 ;;
    *) build_variant "$want" ;;
esac
printf '%s\n' "$version" >"$build/xen-version"
say "done (source xen $version)"
