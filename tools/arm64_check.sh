#!/usr/bin/env bash
# Does the project install and race on ARM64 (aarch64) Linux? Builds the project's wheel, makes an
# aarch64 Python environment, installs the wheel there with pip, and runs `vmc-duel health` and a
# 50-step fast race; checks that pip resolved the same gymnasium as on x86-64; measures the int8
# world model's z error against fp32 on the aarch64 CPU (the figure export's int8 check records).
#
# On an x86-64 host the aarch64 side runs under qemu-user: Debian's arm64 Python (its .debs, for
# the host's Debian release, fetched with a private apt configuration and unpacked into a root
# under the cache) run by `qemu-aarch64 -L ROOT`; binfmt_misc is not needed (the venv's python is
# a wrapper script that calls qemu). On an aarch64 host: a plain venv of the system python3.
#
# Exit status: 0 passed; 77 skipped: this machine cannot run the check (no qemu-user, no apt to
# fetch the packages, no network, no compiler for box2d-py), with the reason; anything else: a
# failure, with the phase it happened in.
#
# Cache (a second run is much faster): ${VMC_ARM64_CACHE:-~/.cache/vmc-duel/arm64}: the aarch64
# root, pip's cache, the box2d-py wheel built from source. Environment:
#   VMC_ARM64_CACHE        the cache directory
#   VMC_ARM64_HOST_PYTHON  the host's Python with the project's dev install (default .venv/bin/python):
#                          builds the wheel and the int8 check's observations
#   VMC_ARM64_TIMEOUT      seconds allowed to each emulated command (default 1800)
set -euo pipefail

SKIP=77
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VMC_ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmc-duel/arm64}
HOST_PY=${VMC_ARM64_HOST_PYTHON:-$REPO/.venv/bin/python}
TIMEOUT=${VMC_ARM64_TIMEOUT:-1800}
SEED=5
STEPS=50
HOST_ARCH=$(uname -m)

PHASE="start"
PHASE_START=$(date +%s.%N)
SCRIPT_START=$PHASE_START
TIMES=()
WORK=""
DONE=""

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf 'arm64_check: %s\n' "$*"; }
end_phase() {
    TIMES+=("$(printf '%-22s %7s s' "$PHASE" "$(secs "$PHASE_START" "$(now)")")")
}
phase() {
    [ "$PHASE" = "start" ] || end_phase
    PHASE=$1
    PHASE_START=$(now)
    say "== $PHASE"
}
skip() {
    say "SKIPPED (cannot check ARM64 on this machine): $*" >&2
    DONE=skip
    exit "$SKIP"
}
fail() {
    say "FAILED in phase '$PHASE': $*" >&2
    DONE=fail
    exit 1
}
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -z "$DONE" ]; then
        say "FAILED in phase '$PHASE' (exit $rc)" >&2
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if mkdir -p "$CACHE/logs"; then cp "$WORK"/logs/*.log "$CACHE/logs/" 2>/dev/null || true; fi
        rm -rf "$WORK"
    fi
}
trap on_exit EXIT

# run LOG CMD...: CMD's output to $WORK/logs/LOG.log; on failure its tail, and the phase fails.
run() {
    local log="$WORK/logs/$1.log"
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        fail "$* (log: $CACHE/logs/$(basename "$log"))"
    fi
}
# json FILE EXPR: evaluate a Python expression on the JSON object in FILE (d), print the result.
json() { "$HOST_PY" -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }
# The versions of the distributions a race depends on, from a pip --report file.
resolved() {
    "$HOST_PY" - "$1" <<'EOF'
import json, sys
have = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.load(open(sys.argv[1]))["install"]}
box2d = next((f"{n} {have[n]}" for n in ("box2d", "box2d-py") if n in have), "none")
print(f"gymnasium {have.get('gymnasium')}, Box2D from {box2d}, pygame-ce {have.get('pygame-ce')}, "
      f"onnxruntime {have.get('onnxruntime')}, numba {have.get('numba')}")
EOF
}
# first FILE...: the first of the files (a glob's matches) that exists.
first() {
    local f
    for f in "$@"; do
        if [ -e "$f" ]; then printf '%s\n' "$f"; return 0; fi
    done
    return 1
}
apt_as_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
# wheel_has WHEEL SUFFIX: whether a file of WHEEL ends with SUFFIX.
wheel_has() {
    "$HOST_PY" -c 'import sys, zipfile; sys.exit(not any(n.endswith(sys.argv[2]) for n in zipfile.ZipFile(sys.argv[1]).namelist()))' "$1" "$2"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -w 3600 9; then
    skip "another arm64_check holds $CACHE/.lock"
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmc-arm64.XXXXXX")
mkdir -p "$WORK/logs" "$WORK/dist" "$WORK/run" "$CACHE/pip" "$CACHE/wheels"
export PIP_CACHE_DIR="$CACHE/pip" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# ---------------------------------------------------------------------------------------------
phase "host tools"
case "$HOST_ARCH" in
    x86_64) MODE=emulated ;;
    aarch64) MODE=native ;;
    *) skip "host is $HOST_ARCH: neither x86_64 (qemu-user) nor aarch64" ;;
esac
[ -x "$HOST_PY" ] || skip "no host Python at $HOST_PY (make test creates .venv; or set VMC_ARM64_HOST_PYTHON)"
# install_missing TOOL... -- PACKAGE...: apt-get install PACKAGEs when a TOOL is missing (as root).
install_missing() {
    local tools=() missing=0
    while [ "$1" != "--" ]; do tools+=("$1"); shift; done
    shift
    for t in "${tools[@]}"; do command -v "$t" >/dev/null || missing=1; done
    [ "$missing" = 0 ] && return 0
    apt_as_root || return 1
    timeout 900 sh -c "apt-get install -y -qq $* >/dev/null 2>&1 || \
        (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $* >/dev/null 2>&1)" || return 1
    for t in "${tools[@]}"; do command -v "$t" >/dev/null || return 1; done
}
if [ "$MODE" = emulated ]; then
    install_missing qemu-aarch64 -- qemu-user || skip "no qemu-aarch64 (apt-get install qemu-user)"
    QEMU=$(command -v qemu-aarch64)
else
    command -v python3 >/dev/null || skip "no python3"
    # A venv with pip, and what box2d-py's build needs: swig, g++ and the Python headers.
    if ! python3 -c 'import ensurepip, os, sysconfig, sys; sys.exit(not os.path.exists(
            os.path.join(sysconfig.get_path("include"), "Python.h")))' 2>/dev/null; then
        if ! apt_as_root || ! timeout 900 apt-get install -y -qq python3-dev python3-venv >/dev/null 2>&1; then
            skip "no venv module or Python headers (apt-get install python3-dev python3-venv)"
        fi
    fi
    install_missing swig g++ -- swig g++ || skip "box2d-py needs swig and g++ (apt-get install swig g++)"
fi
"$HOST_PY" -c "import build" 2>/dev/null || run pip-build "$HOST_PY" -m pip install -q build

# ---------------------------------------------------------------------------------------------
phase "wheel"
# From a copy of the files git knows (tracked and not ignored), so no stale build/ of the
# checkout ends up in the wheel and the checkout is left as it was.
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z -co --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) \
        | tar -xf - -C "$WORK" --one-top-level=src
else
    mkdir -p "$WORK/src" && (cd "$REPO" && tar --exclude=./.venv --exclude=./data --exclude=./build -cf - .) \
        | tar -xf - -C "$WORK/src"
fi
run wheel "$HOST_PY" -m build --wheel --outdir "$WORK/dist" "$WORK/src"
WHEEL=$(first "$WORK"/dist/vmc_duel-*.whl) || fail "python -m build made no wheel"
WEIGHTS_ARGS=()
if wheel_has "$WHEEL" /manifest.json && wheel_has "$WHEEL" /bounds.yaml; then
    WEIGHTS_NOTE="the wheel's own weights"
else
    WEIGHTS_ARGS=(--weights "$REPO/weights")
    export VMC_DUEL_WEIGHTS="$REPO/weights"
    WEIGHTS_NOTE="the wheel carries no weights: --weights $REPO/weights"
fi
say "$(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) kB), $WEIGHTS_NOTE"

# ---------------------------------------------------------------------------------------------
phase "x86-64 resolution"
# What pip resolves for the same wheel on x86-64 Linux, for the gymnasium comparison.
if [ "$HOST_ARCH" = x86_64 ]; then
    run x86-resolve "$HOST_PY" -m pip install --dry-run --ignore-installed --quiet --report "$WORK/x86.json" "$WHEEL"
else  # on aarch64: gymnasium as pip would pick it for x86-64 (its own requirements are the same everywhere)
    GYM_REQ=$("$HOST_PY" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(next(
        line.split(":", 1)[1].split(";")[0].strip() for n in z.namelist() if n.endswith(".dist-info/METADATA")
        for line in z.read(n).decode().splitlines() if line.startswith("Requires-Dist: gymnasium")))' "$WHEEL")
    run x86-resolve "$HOST_PY" -m pip install --dry-run --ignore-installed --quiet --report "$WORK/x86.json" \
        --no-deps --only-binary=:all: --platform manylinux2014_x86_64 --implementation cp \
        --python-version "$("$HOST_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
        --target "$WORK/x86-target" "$GYM_REQ"
fi
X86_GYM=$(json "$WORK/x86.json" "next(i['metadata']['version'] for i in d['install'] if i['metadata']['name'].lower() == 'gymnasium')")
X86_RESOLVED=$(resolved "$WORK/x86.json")
say "x86-64: $X86_RESOLVED"

# ---------------------------------------------------------------------------------------------
if [ "$MODE" = emulated ]; then
    phase "aarch64 root"
    # shellcheck disable=SC1091
    CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")
    ROOT="$CACHE/root-$CODENAME"
    if [ ! -f "$ROOT/.complete" ]; then
        for t in apt-get apt-cache dpkg-deb; do
            command -v "$t" >/dev/null || skip "no $t: the aarch64 root is made from Debian's arm64 packages"
        done
        rm -rf "$ROOT" "$CACHE/apt" "$CACHE/debs"
        mkdir -p "$CACHE/apt/state/lists/partial" "$CACHE/apt/cache/archives/partial" "$CACHE/debs" "$ROOT"
        : >"$CACHE/apt/status"
        # A private apt: arm64 lists in the cache, the host's sources; the host's dpkg is not touched.
        APT=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o "Dir::State=$CACHE/apt/state"
             -o "Dir::State::status=$CACHE/apt/status" -o "Dir::Cache=$CACHE/apt/cache"
             -o APT::Sandbox::User=root -o Debug::NoLocking=1)
        timeout 600 apt-get "${APT[@]}" -qq update >"$WORK/logs/apt-update.log" 2>&1 \
            || { tail -n 20 "$WORK/logs/apt-update.log" >&2; skip "apt-get update for arm64 failed (network?)"; }
        PYV=$(apt-cache "${APT[@]}" show --no-all-versions python3 2>/dev/null \
              | sed -n 's/^Depends:.*\(python3\.[0-9]*\) .*/\1/p' | head -n1)
        [ -n "$PYV" ] || skip "no arm64 python3 in this host's apt sources"
        # The interpreter, its venv module and pip's wheel, and what they load; not the tools that
        # only install packages (dpkg, debconf, perl). libstdc++6 for onnxruntime and numba.
        mapfile -t PKGS < <(apt-cache "${APT[@]}" depends --recurse --no-recommends --no-suggests \
            --no-conflicts --no-breaks --no-replaces --no-enhances "$PYV-venv" libstdc++6 \
            | grep -v '^[ <]' | sort -u \
            | grep -Ev '^(debconf|cdebconf|dpkg|install-info|perl|perl-.*|libperl.*|tar|ca-certificates|openssl|libdebian-installer.*|libnewt.*|libslang2.*|libtextwrap1)$')
        # The headers, to build box2d-py; not their dependencies (the cross compiler has the libc's).
        (cd "$CACHE/debs" && timeout 900 apt-get "${APT[@]}" -qq download "${PKGS[@]}" "lib$PYV-dev") \
            >"$WORK/logs/apt-download.log" 2>&1 \
            || { tail -n 20 "$WORK/logs/apt-download.log" >&2; skip "apt-get download of arm64 $PYV failed"; }
        for deb in "$CACHE"/debs/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
        # usrmerge, as an installed Debian has it (the ELF interpreter is /lib/ld-linux-aarch64.so.1)
        for d in bin sbin lib; do
            if [ -d "$ROOT/$d" ] && [ ! -L "$ROOT/$d" ]; then
                mkdir -p "$ROOT/usr/$d" && cp -a "$ROOT/$d/." "$ROOT/usr/$d/" && rm -rf "${ROOT:?}/$d"
            fi
            [ -e "$ROOT/$d" ] || ln -s "usr/$d" "$ROOT/$d"
        done
        # qemu 7.2 shows programs the host's x86 /proc/cpuinfo, on which onnxruntime's cpuinfo
        # segfaults; `-L ROOT` looks files up in ROOT first, /proc/cpuinfo included: an ARM one
        # (Cortex-A72, a Raspberry Pi 4's). Newer qemu emulates /proc/cpuinfo itself.
        mkdir -p "$ROOT/proc"
        for ((i = 0; i < $(getconf _NPROCESSORS_CONF); i++)); do
            printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
            printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n'
            printf 'CPU revision\t: 3\n\n'
        done >"$ROOT/proc/cpuinfo"
        echo "$PYV" >"$ROOT/.python"
        rm -rf "$CACHE/debs" "$CACHE/apt"  # the root is what is kept
        touch "$ROOT/.complete"
    fi
    PYV=$(cat "$ROOT/.python")
    PYBIN="$ROOT/usr/bin/$PYV"
    probe=$("$QEMU" -L "$ROOT" "$PYBIN" -c 'import platform; print(platform.machine())' 2>&1) \
        || skip "qemu-aarch64 cannot run the aarch64 Python here: $probe"
    [ "$probe" = aarch64 ] || fail "the emulated Python says machine $probe"
    say "Debian $CODENAME's arm64 $PYV under $("$QEMU" --version | head -n1)"
fi

# ---------------------------------------------------------------------------------------------
phase "venv"
VENV="$WORK/venv"
if [ "$MODE" = emulated ]; then
    run venv "$QEMU" -L "$ROOT" "$PYBIN" -m venv --without-pip "$VENV"
    # No binfmt_misc: each python of the venv is a script that runs the interpreter under qemu;
    # -0 "$0" makes sys.executable this script, so pip's child Pythons run under qemu too.
    for name in python python3 "$PYV"; do
        rm -f "$VENV/bin/$name"
        # shellcheck disable=SC2016  # "$0" and "$@" are the wrapper's
        printf '#!/bin/sh\nexec %s -L %s -0 "$0" %s "$@"\n' "$QEMU" "$ROOT" "$PYBIN" >"$VENV/bin/$name"
        chmod +x "$VENV/bin/$name"
    done
    # pip, as ensurepip installs it (Debian's bundled wheel), unpacked natively: ensurepip itself
    # takes about a minute under emulation.
    PIP_WHEEL=$(first "$ROOT"/usr/share/python-wheels/pip-*.whl) || fail "no pip wheel in $ROOT"
    run venv-pip "$HOST_PY" -m zipfile -e "$PIP_WHEEL" "$VENV/lib/$PYV/site-packages"
    # Compile box2d-py with the host's cross compiler (the name aarch64 Python's sysconfig gives)
    # and the Python headers of the root.
    export CPPFLAGS="-I$ROOT/usr/include/$PYV -idirafter $ROOT/usr/include"
else
    run venv python3 -m venv "$VENV"
    PYV=$("$VENV/bin/python" -c 'import sys; print("python%d.%d" % sys.version_info[:2])')
fi
PY="$VENV/bin/python"
T=(timeout "$TIMEOUT")
"${T[@]}" "$PY" -m pip --version | sed 's/^/arm64_check: /'

# ---------------------------------------------------------------------------------------------
phase "box2d-py"
run needs-box2d-py "${T[@]}" "$PY" "$REPO/tools/arm64_probe.py" needs-box2d-py "$WHEEL"
BOX2D_REQ=$(json "$WORK/logs/needs-box2d-py.log" "d['requirement'] or ''")
if [ -z "$BOX2D_REQ" ]; then
    say "the wheel asks for no box2d-py here"
else
    PYTAG="cp${PYV#python}"
    PYTAG=${PYTAG/./}
    if BUILT=$(first "$CACHE"/wheels/box2d_py-*-"$PYTAG"-*linux_aarch64.whl); then
        say "$BOX2D_REQ: cached $(basename "$BUILT")"
    else
        if [ "$MODE" = emulated ]; then
            install_missing aarch64-linux-gnu-g++ swig -- g++-aarch64-linux-gnu swig \
                || skip "building box2d-py needs swig and aarch64-linux-gnu-g++ (apt-get install swig g++-aarch64-linux-gnu)"
        fi
        run box2d-py "${T[@]}" "$PY" -m pip wheel --use-pep517 --no-deps "$BOX2D_REQ" -w "$CACHE/wheels"
        BUILT=$(first "$CACHE"/wheels/box2d_py-*-"$PYTAG"-*linux_aarch64.whl) || fail "pip built no box2d-py wheel"
        say "$BOX2D_REQ: built $(basename "$BUILT") ($(secs "$PHASE_START" "$(now)") s)"
    fi
fi

# ---------------------------------------------------------------------------------------------
phase "pip install"
if ! "${T[@]}" "$PY" -m pip install --find-links "$CACHE/wheels" --report "$WORK/arm.json" "$WHEEL" \
        >"$WORK/logs/install.log" 2>&1; then
    tail -n 40 "$WORK/logs/install.log" >&2
    # the package index out of reach is this machine's problem, not the project's: a skip
    if grep -qiE "connection(error| refused| reset)|read timed out|temporary failure in name resolution|could not fetch url|network is unreachable|max retries exceeded" "$WORK/logs/install.log"; then
        skip "pip could not reach the package index (log: $CACHE/logs/install.log)"
    fi
    fail "pip install of the wheel on aarch64 (log: $CACHE/logs/install.log)"
fi
ARM_GYM=$(json "$WORK/arm.json" "next(i['metadata']['version'] for i in d['install'] if i['metadata']['name'].lower() == 'gymnasium')")
ARM_RESOLVED=$(resolved "$WORK/arm.json")
say "aarch64: $ARM_RESOLVED"
[ "$ARM_GYM" = "$X86_GYM" ] || fail "pip resolved gymnasium $ARM_GYM on aarch64 but $X86_GYM on x86-64"

# ---------------------------------------------------------------------------------------------
cd "$WORK/run"  # outside the checkout: the installed package, nothing else
phase "health"
if ! "${T[@]}" "$VENV/bin/vmc-duel" health "${WEIGHTS_ARGS[@]}" >"$WORK/logs/health.log" 2>&1; then
    cat "$WORK/logs/health.log" >&2
    fail "vmc-duel health is not healthy"
fi
sed 's/^/  /' "$WORK/logs/health.log"
HEALTH=$(tail -n1 "$WORK/logs/health.log")
BOX2D_LINE=$(grep -E '^  box2d' "$WORK/logs/health.log" | sed 's/^ *//; s/  */ /g')
[ "$HEALTH" = healthy ] || fail "vmc-duel health ends with: $HEALTH"

# ---------------------------------------------------------------------------------------------
phase "race"
run race "${T[@]}" "$VENV/bin/vmc-duel" race --seed "$SEED" --steps "$STEPS" --renderer fast --json "${WEIGHTS_ARGS[@]}"
tail -n1 "$WORK/logs/race.log" >"$WORK/result.json"
RESULT=$(json "$WORK/result.json" "'seed %s, %s steps: leader %s, rewards %s' % (d['seed'], \
    max(p['step'] for p in d['players'].values()), d['leader'], \
    ', '.join('%s %.1f' % (k, p['reward']) for k, p in sorted(d['players'].items())))") \
    || fail "the race's last line is not its JSON result: $(tail -c 300 "$WORK/logs/race.log")"
say "race: $RESULT"

# ---------------------------------------------------------------------------------------------
phase "int8 z error"
# export's int8 check (export.variants.compare): z of int8 against fp32 on 64 observations of the
# check track, here on the host's CPU and on the aarch64 one (NEON; qemu: its default CPU, with
# the dot-product and i8mm extensions, and a Cortex-A72, a Raspberry Pi 4's, without them).
run observations env PYTHONPATH="$REPO" "$HOST_PY" "$REPO/tools/arm64_probe.py" observations "$WORK/obs.npy"
WEIGHTS_FOR_Z="$VENV/lib/$PYV/site-packages/vmc_duel_weights"
[ -f "$WEIGHTS_FOR_Z/world_model.int8.onnx" ] || WEIGHTS_FOR_Z="$REPO/weights"
zfmt="'%.2f%% of z spread (mean |dz| %.5f, max %.4f) on %s' % (100 * d['z_err_over_spread'], \
    d['z_mean_abs_err'], d['z_max_abs_err'], d['cpu'])"
Z_HOST=$(json "$WORK/logs/observations.log" "$zfmt")
Z_LINES=("host $HOST_ARCH: $Z_HOST")
run z-error "${T[@]}" "$PY" "$REPO/tools/arm64_probe.py" z-error "$WEIGHTS_FOR_Z" "$WORK/obs.npy"
Z_LINES+=("aarch64 ($([ "$MODE" = emulated ] && echo "qemu default CPU" || echo native)): $(json "$WORK/logs/z-error.log" "$zfmt")")
if [ "$MODE" = emulated ]; then
    QEMU_CPU=cortex-a72 run z-error-a72 "${T[@]}" "$PY" "$REPO/tools/arm64_probe.py" z-error "$WEIGHTS_FOR_Z" "$WORK/obs.npy"
    Z_LINES+=("aarch64 (qemu Cortex-A72): $(json "$WORK/logs/z-error-a72.log" "$zfmt")")
fi
GATE=$(json "$WEIGHTS_FOR_Z/manifest.json" "'%.2f%% recorded at export (%s), driving gate %s' % ( \
    100 * d['files']['world_model.int8.onnx']['z_err_over_spread'], \
    d['files']['world_model.int8.onnx'].get('gate', {}).get('hardware', {}).get('vector_isa', '?'), \
    'passed' if d['files']['world_model.int8.onnx'].get('gate', {}).get('passed') else 'not passed')")
end_phase

# ---------------------------------------------------------------------------------------------
echo
echo "ARM64 check passed ($([ "$MODE" = emulated ] && echo "emulated: qemu-user on $HOST_ARCH" || echo "native aarch64"), $PYV)"
echo "  resolved on aarch64: $ARM_RESOLVED"
echo "  resolved on x86-64:  $X86_RESOLVED"
echo "  weights:             $WEIGHTS_NOTE"
echo "  health:              $HEALTH ($BOX2D_LINE)"
echo "  race:                $RESULT"
echo "  int8 z error vs fp32 ($GATE):"
for line in "${Z_LINES[@]}"; do echo "    $line"; done
echo "  wall time per phase:"
for line in "${TIMES[@]}"; do echo "    $line"; done
echo "    $(printf '%-22s %7s s' total "$(secs "$SCRIPT_START" "$(now)")")"
DONE=pass
