#!/usr/bin/env bash
# Builds sitevault for Windows (x86_64-pc-windows-gnu, linked by Debian's mingw-w64) and proves
# the exe runs under Wine 8.0 (Debian 12's wine + wine64, 64-bit only, no display needed):
#   - `sitevault.exe --version` prints the version and exits 0, and a bad flag exits 2;
#   - the same exit codes reach a .bat through cmd.exe's %ERRORLEVEL%;
#   - init + backup + restore of a small folder, once on Z: (Wine's view of /) and once on a
#     drive X: mapped to a Linux folder; the restored files are compared byte for byte.
# It prints one line per check and a summary, and fails (exit 1) if any check failed.
#
# Wine 8.0 has no bcryptprimitives.dll, whose ProcessPrng Rust's std (1.78+) imports: every
# Rust program then exits silently with code 53. A TEST-ONLY stand-in built from
# .ci/windows/processprng.c is copied into the Wine prefix's system32, and nowhere else: never
# ship it, never put it next to sitevault.exe.
#
# Sourced: exports into the caller SITEVAULT_WINE_EXE (the built exe), SITEVAULT_WINE_HOLDOPEN
#   (a test-only program that holds a file open without sharing), WINEPREFIX, WINEDEBUG
#   and WINEDLLOVERRIDES, and defines sitevault_windows_stop, which stops the prefix's
#   wineserver and removes the temp dir. Note: sourcing turns on `set -euo pipefail` in the
#   caller, and a failure exits it.
# Executed: leaves the prefix in place for later use; `source` the env file it writes.
# Either way the environment is also written as `export K=V` lines to
#   ${SITEVAULT_CI_ENV:-<tmp>/windows.env}.
# Installs with apt-get (as root, or through sudo) what is missing: gcc-mingw-w64-x86-64,
# wine, wine64 (no recommends, no i386). The stand-in DLL is cached in
# ${SITEVAULT_CI_CACHE:-$HOME/.cache/sitevault-ci}/windows. The Wine prefix is
# $SITEVAULT_WINEPREFIX when set (made once, then reused), else a new one in the temp dir.
set -euo pipefail

# Shell variables, not exported: only the shell that made the temp dir removes it.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  SITEVAULT_WINE_TMP=
else
  SITEVAULT_WINE_TMP=${SITEVAULT_WINE_TMP:-}
fi

# Safe to call any number of times, and from an EXIT trap (never fails).
sitevault_windows_stop() {
  if [[ -n "${WINEPREFIX:-}" && -d "$WINEPREFIX" ]] && command -v wineserver >/dev/null; then
    wineserver -k >/dev/null 2>&1 || true
  fi
  if [[ -n "${SITEVAULT_WINE_TMP:-}" && -d "$SITEVAULT_WINE_TMP" ]]; then
    rm -rf "$SITEVAULT_WINE_TMP" || true
  fi
  SITEVAULT_WINE_TMP=
  return 0
}

_svw_t0=$(date +%s%N)
_svw_log() {
  local ms=$(( ($(date +%s%N) - _svw_t0) / 1000000 ))
  printf '[windows %d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"
}

# Logs "FAILED: $1", prints the files named after it, exits 1 (a setup step failed).
_svw_die() {
  _svw_log "FAILED: $1"
  shift
  local f
  for f in "$@"; do
    [[ -s "$f" ]] && { echo "----- $f" >&2; tail -n 60 "$f" >&2; }
  done
  exit 1
}

# Runs "$@" with output to $log; on failure prints the log and exits 1.
_svw_quiet() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 || _svw_die "$*" "$log"
}

# Seconds since $1 (a `date +%s%N`), as 12.3.
_svw_since() {
  local ms=$(( ($(date +%s%N) - $1) / 1000000 ))
  printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

# One check's result: _svw_check ok|FAIL "what". Failures are counted and summed up at the end.
_svw_results=() _svw_failed=0
_svw_check() {
  local status=$1
  shift
  [[ $status == ok ]] || _svw_failed=$((_svw_failed + 1))
  _svw_results+=("$status: $*")
  _svw_log "$status: $*"
}

# The Windows path of a Linux path through Z:, which a new prefix maps to /.
_svw_zpath() {
  local p=$1
  printf 'Z:%s' "${p//\//\\}"
}

# Runs the exe under Wine with a time limit; stdout to $_svw_out, stderr to $_svw_err, exit code
# in $_svw_rc. usage: _svw_run NAME ARG...
_svw_run() {
  local name=$1
  shift
  _svw_out=$SITEVAULT_WINE_TMP/$name.out _svw_err=$SITEVAULT_WINE_TMP/$name.err
  if timeout 300 wine "$SITEVAULT_WINE_EXE" "$@" >"$_svw_out" 2>"$_svw_err" </dev/null; then
    _svw_rc=0
  else
    _svw_rc=$?
  fi
}

# An init + backup + restore round trip through drive paths: $1 label, $2 Windows path of the
# Linux folder $3. Makes $3/src, backs it up into $3/vault, restores to $3/out.
_svw_roundtrip() {
  local label=$1 win=$2 dir=$3 step
  mkdir -p "$dir/src/sub dir/deeper" "$dir/src/empty"
  printf 'hello from sitevault under Wine\n' >"$dir/src/hello.txt"
  : >"$dir/src/sub dir/empty file"
  printf 'caf\xc3\xa9\r\nline two\n' >"$dir/src/sub dir/café.txt"
  head -c 3000000 /dev/urandom >"$dir/src/sub dir/deeper/random.bin"
  seq 1 200000 >"$dir/src/sub dir/deeper/numbers.txt"
  touch -d '2021-02-03 04:05:06.5' "$dir/src/hello.txt"

  for step in init backup restore; do
    case $step in
      init) set -- init --repo "$win\\vault" ;;
      backup) set -- backup --repo "$win\\vault" --host wine-ci "$win\\src" ;;
      restore) set -- restore --repo "$win\\vault" latest --target "$win\\out" ;;
    esac
    _svw_run "$label-$step" "$@"
    if [[ $_svw_rc != 0 ]]; then
      _svw_check FAIL "$label: sitevault.exe $*: exit $_svw_rc: $(tail -n 3 "$_svw_err" | tr '\n' ' ')"
      return 0
    fi
  done
  _svw_log "$label: $(tr '\n' ' ' <"$SITEVAULT_WINE_TMP/$label-restore.out")"

  # --target DIR puts D:\a\b at DIR\D\a\b.
  local drive=${win%%:*} rest=${win#*:} restored
  rest=${rest//\\//}
  restored=$dir/out/$drive$rest/src
  if [[ ! -d "$restored" ]]; then
    _svw_check FAIL "$label: nothing restored at $restored ($(cd "$dir/out" 2>/dev/null && find . | head -n 5 | tr '\n' ' '))"
  elif diff -r "$dir/src" "$restored" >"$SITEVAULT_WINE_TMP/$label-diff.txt" 2>&1; then
    local n
    n=$(find "$dir/src" -type f | wc -l)
    _svw_check ok "$label: init + backup + restore round trip, $n files byte-identical (diff -r on Linux)"
    local want got
    want=$(stat -c %.9Y "$dir/src/hello.txt") got=$(stat -c %.9Y "$restored/hello.txt")
    if [[ $want == "$got" ]]; then
      _svw_check ok "$label: mtime restored ($got)"
    else
      _svw_check FAIL "$label: mtime of hello.txt is $got, want $want"
    fi
  else
    _svw_check FAIL "$label: restored files differ: $(head -n 5 "$SITEVAULT_WINE_TMP/$label-diff.txt" | tr '\n' ' ')"
  fi
}

# Informational probes (logged, not counted): which path forms reach the vault made on X:
# by _svw_roundtrip, and whether a path longer than MAX_PATH (260) backs up and restores.
_svw_probes() {
  local form tmp=$SITEVAULT_WINE_TMP
  for form in 'x:\vault' 'X:/vault' '\\?\X:\vault' "$tmp/x/vault" "$(_svw_zpath "$tmp/x/vault")"; do
    _svw_run probe ls --repo "$form" latest
    _svw_log "probe: ls --repo '$form' latest: exit $_svw_rc, $(wc -l <"$_svw_out") lines $(head -n 1 "$_svw_err")"
  done
  local deep=long i
  for i in 1 2 3 4 5 6; do
    deep+=/$(printf 'd%02d-%046d' "$i" 0)
  done
  mkdir -p "$tmp/x/$deep"
  printf 'deep\n' >"$tmp/x/$deep/file.txt"
  local win="X:\\${deep//\//\\}\\file.txt"
  _svw_run probe-long-backup backup --repo 'X:\vault' --host wine-long 'X:\long'
  local brc=$_svw_rc
  _svw_run probe-long-restore restore --repo 'X:\vault' --host wine-long latest --target 'X:\out-long'
  if [[ $brc == 0 && $_svw_rc == 0 ]] && cmp -s "$tmp/x/$deep/file.txt" "$tmp/x/out-long/X/$deep/file.txt"; then
    _svw_log "probe: a ${#win}-character path (> MAX_PATH) backs up and restores byte-identically"
  else
    _svw_log "probe: a ${#win}-character path: backup exit $brc, restore exit $_svw_rc: $(head -n 2 "$_svw_err" | tr '\n' ' ')"
  fi
}

_sitevault_windows_main() {
  local root cache pkgs=(gcc-mingw-w64-x86-64 wine wine64) missing=() p t
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cache=${SITEVAULT_CI_CACHE:-$HOME/.cache/sitevault-ci}/windows
  mkdir -p "$cache"
  if [[ -n "$SITEVAULT_WINE_TMP" ]]; then
    _svw_log "removing what this shell made before ($SITEVAULT_WINE_TMP)"
    sitevault_windows_stop
  fi
  SITEVAULT_WINE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sitevault-windows.XXXXXX")
  local tmp=$SITEVAULT_WINE_TMP

  # 1. Debian packages, skipped when installed.
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [[ ${#missing[@]} == 0 ]]; then
    _svw_log "already installed: ${pkgs[*]}"
  else
    local -a sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo -n)
    t=$(date +%s%N)
    _svw_quiet "$tmp/apt-update.log" "${sudo[@]}" apt-get -qq update
    _svw_log "apt-get update took $(_svw_since "$t")s"
    t=$(date +%s%N)
    _svw_quiet "$tmp/apt-install.log" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get -qq -y --no-install-recommends install "${missing[@]}"
    _svw_log "apt-get install ${missing[*]} took $(_svw_since "$t")s"
  fi
  _svw_log "$(wine --version 2>/dev/null), $(x86_64-w64-mingw32-gcc --version | head -n 1)"

  # 2. The Windows build (warnings are failures, listed in full).
  if rustup target list --installed | grep -qx x86_64-pc-windows-gnu; then
    _svw_log "rust target x86_64-pc-windows-gnu already installed"
  else
    _svw_quiet "$tmp/rustup.log" rustup target add x86_64-pc-windows-gnu
    _svw_log "rustup target add x86_64-pc-windows-gnu: done"
  fi
  local target_dir
  target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  [[ -n "$target_dir" ]] || _svw_die "cargo metadata gave no target_directory"
  t=$(date +%s%N)
  _svw_quiet "$tmp/build.log" cargo build --release --target x86_64-pc-windows-gnu \
    --manifest-path "$root/Cargo.toml"
  SITEVAULT_WINE_EXE=$target_dir/x86_64-pc-windows-gnu/release/sitevault.exe
  [[ -f "$SITEVAULT_WINE_EXE" ]] || _svw_die "no $SITEVAULT_WINE_EXE after the build" "$tmp/build.log"
  _svw_log "cargo build --release --target x86_64-pc-windows-gnu took $(_svw_since "$t")s"
  if grep -q '^warning' "$tmp/build.log"; then
    _svw_check FAIL "windows build has warnings:"
    grep -A 12 '^warning' "$tmp/build.log" >&2
  else
    _svw_check ok "windows build: no warnings"
  fi

  # 3. The TEST-ONLY ProcessPrng stand-in, rebuilt when its source changes.
  local src=$root/.ci/windows/processprng.c dll=$cache/bcryptprimitives.dll
  if [[ -f "$dll" && "$dll" -nt "$src" ]]; then
    _svw_log "bcryptprimitives.dll stand-in already built: $dll"
  else
    _svw_quiet "$tmp/dll.log" x86_64-w64-mingw32-gcc -shared -O2 -s -Wall -Werror \
      -o "$dll.new" "$src" -ladvapi32
    mv "$dll.new" "$dll"
    _svw_log "built the bcryptprimitives.dll stand-in: $dll"
  fi

  # 3b. A TEST-ONLY program that holds a file open with no sharing (tests/it/wine.rs).
  local hsrc=$root/.ci/windows/holdopen.c hold=$cache/holdopen.exe
  if [[ -f "$hold" && "$hold" -nt "$hsrc" ]]; then
    _svw_log "holdopen.exe already built: $hold"
  else
    _svw_quiet "$tmp/holdopen.log" x86_64-w64-mingw32-gcc -municode -O2 -s -Wall -Werror \
      -o "$hold.new" "$hsrc"
    mv "$hold.new" "$hold"
    _svw_log "built holdopen.exe: $hold"
  fi
  SITEVAULT_WINE_HOLDOPEN=$hold

  # 4. The Wine prefix: 64-bit, no Mono/Gecko prompts, no display.
  export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINEARCH=win64
  export WINEPREFIX=${SITEVAULT_WINEPREFIX:-$tmp/prefix}
  if [[ -f "$WINEPREFIX/system.reg" ]]; then
    _svw_log "reusing the Wine prefix $WINEPREFIX"
  else
    t=$(date +%s%N)
    _svw_quiet "$tmp/wineboot.log" timeout 300 wine wineboot -i
    _svw_quiet "$tmp/wineboot.log" timeout 300 wineserver -w
    _svw_log "made the Wine prefix $WINEPREFIX in $(_svw_since "$t")s"
  fi
  local sys32=$WINEPREFIX/drive_c/windows/system32
  [[ -d "$sys32" ]] || _svw_die "no $sys32 in the new prefix" "$tmp/wineboot.log"

  # 5. Without the stand-in Wine 8.0 runs no Rust program (exit 53); then with it.
  rm -f "$sys32/bcryptprimitives.dll"
  _svw_run version-without-shim --version
  _svw_log "without the stand-in: sitevault.exe --version exits $_svw_rc (53: ProcessPrng missing)"
  cp "$dll" "$sys32/bcryptprimitives.dll"

  _svw_run version --version
  if [[ $_svw_rc == 0 && -s "$_svw_out" ]]; then
    _svw_check ok "wine sitevault.exe --version: exit 0, printed '$(tr -d '\r' <"$_svw_out" | head -n 1)'"
  else
    _svw_check FAIL "wine sitevault.exe --version: exit $_svw_rc, printed '$(head -c 200 "$_svw_out")' $(head -c 300 "$_svw_err")"
  fi
  _svw_run bad-flag --no-such-flag
  if [[ $_svw_rc == 2 ]]; then
    _svw_check ok "wine sitevault.exe --no-such-flag: exit 2 (usage error)"
  else
    _svw_check FAIL "wine sitevault.exe --no-such-flag: exit $_svw_rc, want 2"
  fi

  # 6. Exit codes through cmd.exe.
  local exe_win bat=$tmp/version.bat
  exe_win=$(_svw_zpath "$SITEVAULT_WINE_EXE")
  # cmd /c exits with the batch's last ERRORLEVEL (echo leaves it as it is), made explicit here.
  printf '@echo off\r\n"%s" --version\r\necho errorlevel=%%ERRORLEVEL%%\r\n"%s" --no-such-flag 2>nul\r\necho errorlevel=%%ERRORLEVEL%%\r\nexit /b %%ERRORLEVEL%%\r\n' \
    "$exe_win" "$exe_win" >"$bat"
  local out rc=0
  out=$(timeout 120 wine cmd /c "$(_svw_zpath "$bat")" 2>"$tmp/bat.err" </dev/null | tr -d '\r') || rc=$?
  if [[ $rc == 2 && $out == *sitevault*$'\n'errorlevel=0$'\n'errorlevel=2 ]]; then
    _svw_check ok "wine cmd /c version.bat: $(echo "$out" | tr '\n' ' '); cmd exit 2"
  else
    _svw_check FAIL "wine cmd /c version.bat: exit $rc, printed '$(echo "$out" | tr '\n' ' ')' $(head -c 300 "$tmp/bat.err")"
  fi

  # 7. init + backup + restore on Z: and on a mapped drive X:.
  export SITEVAULT_PASSWORD=wine-ci
  _svw_roundtrip z-drive "$(_svw_zpath "$tmp/z")" "$tmp/z"
  mkdir -p "$tmp/x"
  ln -sfn "$tmp/x" "$WINEPREFIX/dosdevices/x:"
  _svw_roundtrip x-drive 'X:' "$tmp/x"
  _svw_probes
  rm -f "$WINEPREFIX/dosdevices/x:"
  unset SITEVAULT_PASSWORD

  # 7b. The library's unit tests, built for Windows and run under Wine: the #[cfg(windows)]
  # ones (real Windows path parsing: drive letters, UNC shares, \\?\ long paths) run only here.
  t=$(date +%s%N)
  _svw_quiet "$tmp/unit-build.log" cargo test --release --lib --target x86_64-pc-windows-gnu \
    --no-run --message-format=json --manifest-path "$root/Cargo.toml"
  local unit
  unit=$(grep '"executable":"[^"]*sitevault[^"]*\.exe"' "$tmp/unit-build.log" |
    sed 's/.*"executable":"\([^"]*\)".*/\1/' | tail -n 1)
  _svw_log "cargo test --lib --target x86_64-pc-windows-gnu --no-run took $(_svw_since "$t")s"
  if [[ -z "$unit" ]]; then
    _svw_check FAIL "no unit-test exe in the build output ($tmp/unit-build.log)"
  elif timeout 600 wine "$unit" >"$tmp/unit.log" 2>&1 </dev/null; then
    _svw_check ok "library unit tests under Wine: $(grep -a '^test result' "$tmp/unit.log" | tr -d '\r')"
  else
    _svw_check FAIL "library unit tests under Wine failed:"
    grep -a -E 'FAILED|panicked|^test result' "$tmp/unit.log" | head -n 40 >&2
  fi

  # 8. The environment for later test code.
  local envfile=${SITEVAULT_CI_ENV:-$tmp/windows.env} kv
  local -a vars=(
    "SITEVAULT_WINE_EXE=$SITEVAULT_WINE_EXE"
    "SITEVAULT_WINE_HOLDOPEN=$SITEVAULT_WINE_HOLDOPEN"
    "WINEPREFIX=$WINEPREFIX"
    "WINEDEBUG=$WINEDEBUG"
    "WINEDLLOVERRIDES=$WINEDLLOVERRIDES"
  )
  mkdir -p "$(dirname "$envfile")"
  : >"$envfile"
  for kv in "${vars[@]}"; do
    export "${kv?}"
    printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$envfile"
  done
  _svw_log "environment exported and written to $envfile"
  if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    _svw_log "left in place for later use: $tmp (the prefix alone is ~700 MB; rm -rf it when done)"
  fi

  _svw_log "summary: $((${#_svw_results[@]} - _svw_failed)) passed, $_svw_failed failed"
  for p in "${_svw_results[@]}"; do
    echo "  $p"
  done
}

_sitevault_windows_main
if [[ $_svw_failed != 0 ]]; then
  if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then exit 1; else return 1; fi
fi
