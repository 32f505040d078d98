#!/usr/bin/env bash
# Browse benchmark (issue 14): reading a recovery point through `sitevault mount` (FUSE) and
# `sitevault serve` (WebDAV, curl) against `restore` of the same file in the same run, listing a
# 10,000-entry folder both ways, and the peak RSS of each serving process.
#
#   bash benches/browse.sh [MiB]        (default 1024: one file of that size, half compressible)
#
# Goals: sequential read >= 0.7x restore; listing 10,000 entries < 0.5 s. Every reader starts a
# fresh process (cold caches in sitevault; the vault's files are in the page cache for all of
# them alike). Also reported: a plain `cat` of the source file, the machine's own read limit.
# Numbers only: nothing here fails a build.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-1024}

cargo build --release --quiet
SV="$PWD/target/release/sitevault"
work=$(mktemp -d)
cleanup() {
    fusermount3 -uz "$work/mnt" 2>/dev/null || true
    pkill -f "sitevault (mount|serve) --repo $work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export SITEVAULT_PASSWORD=bench TZ=UTC

python3 - "$work/data" "$MIB" <<'EOF'
import os, sys
root, mib = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/many")
with open(f"{root}/big.bin", "wb") as f:
    for i in range(mib * 16):  # 64 KiB blocks: half random, half zeros
        f.write(os.urandom(32768) + bytes(32768))
for i in range(10000):
    with open(f"{root}/many/{i:05d}.txt", "w") as f:
        f.write(f"file {i}\n")
EOF
bytes=$(stat -c %s "$work/data/big.bin")
"$SV" init --repo "$work/vault" --kdf-memory-kib 8192 --kdf-iterations 1 >/dev/null
"$SV" backup --repo "$work/vault" "$work/data" >/dev/null
rel=${work#/}/data

now() { python3 -c 'import time; print(time.monotonic())'; }
since() { python3 -c "print(f'{max($(now) - $1, 1e-6):.3f}')"; }
mbs() { python3 -c "print(f'{$bytes / $1 / 1e6:.0f}')"; }
ratio() { python3 -c "print(f'{$2 / $1:.2f}')"; }
hwm() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

t=$(now); cat "$work/data/big.bin" >/dev/null; cat_s=$(since "$t")

t=$(now)
"$SV" restore --repo "$work/vault" latest --include big.bin --target "$work/restored" >/dev/null
restore_s=$(since "$t")
cmp -s "$work/data/big.bin" "$work/restored/$rel/big.bin" || { echo "restore differs" >&2; exit 1; }
rm -rf "$work/restored"

# FUSE mount
mkdir -p "$work/mnt"
"$SV" mount --repo "$work/vault" "$work/mnt" 2>"$work/mount.err" &
mpid=$!
for _ in $(seq 200); do [ -e "$work/mnt/ids" ] && break; sleep 0.05; done
t=$(now); dd if="$work/mnt/latest/$rel/big.bin" of=/dev/null bs=1M status=none; mount_s=$(since "$t")
t=$(now); n_ls=$(ls "$work/mnt/latest/$rel/many" | wc -l); mount_ls=$(since "$t")
t=$(now); n_lsl=$(ls -l "$work/mnt/latest/$rel/many" | grep -c '^-'); mount_lsl=$(since "$t")
mount_rss=$(hwm $mpid)
cmp -s "$work/data/big.bin" "$work/mnt/latest/$rel/big.bin" || { echo "mount read differs" >&2; exit 1; }
kill -TERM $mpid; wait $mpid

# WebDAV
"$SV" serve --repo "$work/vault" --listen 127.0.0.1:0 >"$work/url" 2>"$work/serve.err" &
spid=$!
for _ in $(seq 200); do [ -s "$work/url" ] && break; sleep 0.05; done
base=$(head -n 1 "$work/url")
t=$(now); curl -sf -o /dev/null "${base}dav/latest/$rel/big.bin"; dav_s=$(since "$t")
t=$(now)
n_dav=$(curl -sf -X PROPFIND -H 'Depth: 1' "${base}dav/latest/$rel/many/" | grep -o '<D:response>' | wc -l)
dav_ls=$(since "$t")
dav_rss=$(hwm $spid)
curl -sf "${base}dav/latest/$rel/big.bin" | cmp -s - "$work/data/big.bin" || { echo "WebDAV read differs" >&2; exit 1; }
kill -TERM $spid; wait $spid

echo
echo "browse benchmark: $((bytes >> 20)) MiB file, 10,000-entry folder, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-22s %10s %10s %12s\n' "read of big.bin" "seconds" "MB/s" "x restore"
printf '%-22s %10s %10s %12s\n' "cat of the source" "$cat_s" "$(mbs "$cat_s")" "-"
printf '%-22s %10s %10s %12s\n' "restore" "$restore_s" "$(mbs "$restore_s")" "1.00"
printf '%-22s %10s %10s %12s\n' "mount (dd bs=1M)" "$mount_s" "$(mbs "$mount_s")" "$(ratio "$mount_s" "$restore_s")"
printf '%-22s %10s %10s %12s\n' "WebDAV (curl GET)" "$dav_s" "$(mbs "$dav_s")" "$(ratio "$dav_s" "$restore_s")"
echo
printf '%-34s %10s %10s\n' "listing the 10,000-entry folder" "seconds" "entries"
printf '%-34s %10s %10s\n' "mount: ls" "$mount_ls" "$n_ls"
printf '%-34s %10s %10s\n' "mount: ls -l (stat of each)" "$mount_lsl" "$n_lsl"
printf '%-34s %10s %10s\n' "WebDAV: PROPFIND Depth 1" "$dav_ls" "$((n_dav - 1))"
echo
echo "peak RSS: mount ${mount_rss} MiB, serve ${dav_rss} MiB (default --cache-size 128MiB)"
