#!/usr/bin/env bash
# Opt-in check (not part of the test suite): run classify.py on emulated 64-bit ARM
# (what a Raspberry Pi with a 64-bit OS runs) and compare it with this machine.
#
#   bash edge_demo/arm64_check.sh MODEL_DIR INPUT [INPUT ...]
#
# What it does, all under $ARM64_WORK (default ~/.cache/discomkd-arm64):
#   1. an arm64 Debian bookworm root holding only Python 3.11 and its libraries
#      (mmdebstrap --variant=extract: nothing of it is executed at build time);
#   2. the aarch64 / CPython 3.11 wheels of requirements.txt (pip download), unpacked
#      into a site-packages folder (pip install --target);
#   3. classify.py --json under qemu-aarch64-static -L ROOT (user-mode emulation, no
#      binfmt_misc registration and no chroot needed), emulating a Cortex-A72 (Pi 4;
#      QEMU_CPU=cortex-a76 for a Pi 5);
#   4. the same command in a venv of this machine, and a comparison: same top-1
#      classes, probabilities within 1e-5. Exit status 0 only if they agree.
#
# Needs: qemu-user-static, mmdebstrap (installed with apt-get when missing and run as
# root), python3 with venv/pip, network access to Debian and PyPI (first run only).
# Under emulation latency figures mean nothing; results do.
#
# Emulation notes: LiteRT's CPU-feature detection (cpuinfo) crashes on the host's
# /proc/cpuinfo and /sys CPU tree, so the root gets small ARM-looking ones; and with
# qemu's default "max" CPU model (SVE, I8MM, ...) qemu 7.2 produced wrong int8 results
# in XNNPACK kernels, which real Cortex-A72/A76 CPUs (Pi 4/5) do not run: hence -cpu.
set -euo pipefail

if [[ $# -lt 2 || $1 == -h || $1 == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${ARM64_WORK:-$HOME/.cache/discomkd-arm64}
ROOT=$WORK/root
SITE=$WORK/site-py311-aarch64
WHEELS=$WORK/wheels
HOST_VENV=$WORK/host-venv
CPU=${QEMU_CPU:-cortex-a72}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$WORK"

say() { printf '[arm64_check] %s\n' "$*" >&2; }

missing=()
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        say "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        say "missing tools: sudo apt-get install ${missing[*]}"
        exit 1
    fi
fi

# 1. The arm64 root: Python 3.11 only (the Python of Raspberry Pi OS bookworm).
if [[ ! -x $ROOT/usr/bin/python3.11 ]]; then
    say "building an arm64 $SUITE root with Python 3.11 in $ROOT"
    rm -rf "$ROOT"
    mmdebstrap --quiet --variant=extract --architectures=arm64 \
        --include=python3.11-minimal,libpython3.11-stdlib,libstdc++6,libc6 \
        "$SUITE" "$ROOT" "$MIRROR"
fi

# CPU description for qemu -L lookups (see the emulation notes above).
n=$(nproc); last=$((n - 1)); cpu_dir=$ROOT/sys/devices/system/cpu
mkdir -p "$ROOT/proc" "$cpu_dir"
: >"$ROOT/proc/cpuinfo"
for i in $(seq 0 "$last"); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i" >>"$ROOT/proc/cpuinfo"
    d=$cpu_dir/cpu$i
    mkdir -p "$d/topology"
    echo 0 >"$d/topology/physical_package_id"
    echo "$i" >"$d/topology/core_id"
    echo "$i" >"$d/topology/thread_siblings_list"
    echo "0-$last" >"$d/topology/core_siblings_list"
    echo "0-$last" >"$d/topology/cluster_cpus_list"
    for x in 0 1 2; do
        c=$d/cache/index$x
        mkdir -p "$c"
        case $x in
            0) printf '1\nData\n32K\n%s\n' "$i" ;;
            1) printf '1\nInstruction\n48K\n%s\n' "$i" ;;
            2) printf '2\nUnified\n1024K\n0-%s\n' "$last" ;;
        esac | { read -r l; read -r t; read -r s; read -r sh
                 echo "$l" >"$c/level"; echo "$t" >"$c/type"; echo "$s" >"$c/size"
                 echo "$sh" >"$c/shared_cpu_list"; echo 64 >"$c/coherency_line_size"; }
    done
done
echo 255 >"$cpu_dir/kernel_max"
for f in possible present online; do echo "0-$last" >"$cpu_dir/$f"; done

# 2. The device's wheels, and a venv of this machine with the same requirements.
if [[ ! -x $HOST_VENV/bin/python ]]; then
    say "creating the host venv $HOST_VENV"
    python3 -m venv "$HOST_VENV"
    "$HOST_VENV/bin/pip" install -q -r "$HERE/requirements.txt"
fi
if [[ ! -d $SITE/ai_edge_litert ]]; then
    say "downloading aarch64 / CPython 3.11 wheels"
    platforms=(--platform manylinux2014_aarch64)
    for v in 17 27 28 31 34 35 36; do platforms+=(--platform "manylinux_2_${v}_aarch64"); done
    rm -rf "$WHEELS" "$SITE"
    "$HOST_VENV/bin/pip" download -q -r "$HERE/requirements.txt" "${platforms[@]}" \
        --python-version 3.11 --implementation cp --only-binary=:all: -d "$WHEELS"
    "$HOST_VENV/bin/pip" install -q --no-deps --no-index --target "$SITE" "${platforms[@]}" \
        --python-version 3.11 --implementation cp --only-binary=:all: "$WHEELS"/*.whl
fi

arm_python() {
    PYTHONPATH=$SITE PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 \
        qemu-aarch64-static -cpu "$CPU" -L "$ROOT" "$ROOT/usr/bin/python3.11" "$@"
}

# 3. + 4. Run on both, compare.
say "$(arm_python -c 'import platform, sys; print(platform.machine(), "Python", sys.version.split()[0], end="")') (qemu -cpu $CPU)"
arm_out=$WORK/arm64.jsonl
host_out=$WORK/host.jsonl
arm_python "$HERE/classify.py" "$@" --json --top-k 3 >"$arm_out"
"$HOST_VENV/bin/python" "$HERE/classify.py" "$@" --json --top-k 3 >"$host_out"
arm_python "$HERE/classify.py" "$1" "${@:2:1}" --benchmark 20 --threads 1 --top-k 1 | tail -n 1 >&2

"$HOST_VENV/bin/python" - "$arm_out" "$host_out" <<'EOF'
import json
import sys

arm = [json.loads(line) for line in open(sys.argv[1])]
host = [json.loads(line) for line in open(sys.argv[2])]
bad = 0
if [r["file"] for r in arm] != [r["file"] for r in host]:
    sys.exit("[arm64_check] FAIL: the two runs classified different inputs")
for a, h in zip(arm, host):
    top_a, top_h = a["top_k"][0], h["top_k"][0]
    pa = {t["index"]: t["probability"] for t in a["top_k"]}
    ph = {t["index"]: t["probability"] for t in h["top_k"]}
    same = top_a["index"] == top_h["index"] and all(
        abs(pa[i] - ph[i]) <= 1e-5 for i in pa.keys() & ph.keys())
    bad += not same
    print(f"{'ok  ' if same else 'DIFF'} {a['file']}: arm64 {top_a['label']} "
          f"{top_a['probability']:.4f}, host {top_h['label']} {top_h['probability']:.4f}")
print(f"[arm64_check] {len(arm) - bad}/{len(arm)} inputs agree", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
