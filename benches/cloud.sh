#!/usr/bin/env bash
# Cloud benchmark: backup and restore throughput against the S3 (moto) and Azure Blob (Azurite)
# emulators compared with a local folder in the same run, and storage requests per GB archived.
#
#   bash benches/cloud.sh [MiB]        (default 512 MiB of data: a database file, a content library)
#
# Starts the emulators with .ci/cloud-servers.sh unless SITEVAULT_TEST_S3/_AZ are already set.
# Targets (issue 7): cloud >= 0.5x local-folder throughput on loopback; < 40 requests/GB on a
# first backup. Numbers only: nothing here fails a build.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-512}

cargo build --release --quiet
SV="$PWD/target/release/sitevault"
if [ -z "${SITEVAULT_TEST_S3:-}" ] || [ -z "${SITEVAULT_TEST_AZ:-}" ]; then
    trap 'declare -F sitevault_cloud_stop >/dev/null && sitevault_cloud_stop; true' EXIT
    source .ci/cloud-servers.sh >/dev/null
fi
set +e
work=$(mktemp -d)
trap 'rm -rf "$work"; declare -F sitevault_cloud_stop >/dev/null && sitevault_cloud_stop; true' EXIT
export SITEVAULT_PASSWORD=bench

python3 - "$work/data" "$MIB" <<'EOF'
import os, sys
root, mib = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/SiteDBServer"); os.makedirs(f"{root}/SCCMContentLib")
# Half a compressible database file (8 KiB pages, half zeros), half incompressible content files.
page = lambda i: os.urandom(4096) + bytes(4096)
with open(f"{root}/SiteDBServer/CM_CEN.mdf", "wb") as f:
    for i in range(mib * 64):
        f.write(page(i))
for i in range(mib * 2):
    with open(f"{root}/SCCMContentLib/{i:06d}.bin", "wb") as f:
        f.write(os.urandom(256 * 1024))
EOF
bytes=$(du -sb "$work/data" | cut -f1)
tag=bench-$(date +%s)

now() { python3 -c 'import time; print(time.monotonic())'; }
secs() { python3 -c "print(max($2 - $1, 1e-6))"; }
mbs() { python3 -c "print(f'{$bytes / $1 / 1e6:.0f}')"; }

# CPU seconds a process has used (the emulators run beside sitevault on the same cores, so the
# ratio to local is bounded by how much CPU the emulator itself burns).
pcpu() { python3 -c "import os,sys; f=open(f'/proc/{sys.argv[1]}/stat').read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))" "$1" 2>/dev/null || echo 0; }
server_pid() {
    case $1 in
        s3) pgrep -n -f moto_server || true ;;
        azure) pgrep -n -f azurite-blob || true ;;
    esac
}
cores=$(nproc)
TIMEFORMAT='%U %S'
# Run sitevault, printing its stdout to $work/out and its user+system CPU seconds to stdout.
timed() { { time "$SV" "$@" >"$work/out" 2>"$work/err"; } 2>"$work/cpu" || { cat "$work/err"; return 1; }; awk '{print $1 + $2}' "$work/cpu"; }
declare -A BACKUP RESTORE REQ BCPU RCPU SCPU_B SCPU_R
for kind in local s3 azure; do
    case $kind in
        local) repo="$work/vault" ;;
        s3) repo="$SITEVAULT_TEST_S3/$tag" ;;
        azure) repo="$SITEVAULT_TEST_AZ/$tag" ;;
    esac
    "$SV" init --repo "$repo" >/dev/null || { echo "init failed on $repo"; exit 1; }
    spid=$(server_pid $kind)
    s0=0; [ -n "$spid" ] && s0=$(pcpu "$spid")
    t0=$(now)
    BCPU[$kind]=$(timed backup --json --repo "$repo" "$work/data") || { echo "backup failed on $repo"; exit 1; }
    t1=$(now)
    out=$(cat "$work/out")
    s1=0; [ -n "$spid" ] && s1=$(pcpu "$spid")
    SCPU_B[$kind]=$(python3 -c "print($s1 - $s0)")
    BACKUP[$kind]=$(secs "$t0" "$t1")
    REQ[$kind]=$(python3 -c "import json,sys; r=json.loads(sys.argv[1])['requests']; print(r['gets']+r['range_gets']+r['puts']+r['lists']+r['deletes'])" "$out")
    rm -rf "$work/restore"
    s0=0; [ -n "$spid" ] && s0=$(pcpu "$spid")
    t0=$(now)
    RCPU[$kind]=$(timed restore latest --repo "$repo" --target "$work/restore") || { echo "restore failed on $repo"; exit 1; }
    t1=$(now)
    s1=0; [ -n "$spid" ] && s1=$(pcpu "$spid")
    SCPU_R[$kind]=$(python3 -c "print($s1 - $s0)")
    RESTORE[$kind]=$(secs "$t0" "$t1")
    diff -rq "$work/data" "$work/restore$work/data" >/dev/null || { echo "restore from $repo differs"; exit 1; }
done

gib=$(python3 -c "print($bytes / 2**30)")
printf '\n== sitevault cloud benchmark: %s MiB, first backup, loopback emulators ==\n' "$((bytes / 1048576))"
printf '%-8s %10s %10s %10s %10s %14s %22s %22s\n' target "backup MB/s" "x local" "restore" "x local" "requests/GB" "backup CPU s sv+server" "restore CPU s sv+server"
for kind in local s3 azure; do
    b=$(mbs "${BACKUP[$kind]}"); r=$(mbs "${RESTORE[$kind]}")
    bx=$(python3 -c "print(f'{${BACKUP[local]} / ${BACKUP[$kind]}:.2f}')")
    rx=$(python3 -c "print(f'{${RESTORE[local]} / ${RESTORE[$kind]}:.2f}')")
    rpg=$(python3 -c "print(f'{${REQ[$kind]} / $gib:.1f}')")
    bc=$(python3 -c "print(f'{${BCPU[$kind]}:.1f}+{${SCPU_B[$kind]}:.1f} ({(${BCPU[$kind]} + ${SCPU_B[$kind]}) / ($cores * ${BACKUP[$kind]}) * 100:.0f}%)')")
    rc=$(python3 -c "print(f'{${RCPU[$kind]}:.1f}+{${SCPU_R[$kind]}:.1f} ({(${RCPU[$kind]} + ${SCPU_R[$kind]}) / ($cores * ${RESTORE[$kind]}) * 100:.0f}%)')")
    printf '%-8s %10s %10s %10s %10s %14s %22s %22s\n' "$kind" "$b" "$bx" "$r" "$rx" "$rpg" "$bc" "$rc"
done
echo "CPU: seconds used by sitevault + by the emulator, and (%) that sum as a share of all $cores cores over the run:"
echo "near 100% means the run was CPU-bound, and the emulator's share is CPU local runs do not pay"
echo "targets: cloud >= 0.50x local throughput; < 40 requests/GB on a first backup"
