#!/usr/bin/env bash
# Installs (once, cached outside the repo) and starts two storage emulators on 127.0.0.1
# for the cloud tests:
#   - S3:         moto_server (PyPI `moto`), bucket    `sitevault-test`, and `sitevault-lock`
#                 created with Object Lock (versioned) for immutable vaults
#   - Azure Blob: azurite-blob (npm `azurite` 3.x), container `sitevault-test`
#                 on the emulator account devstoreaccount1
# Each run starts fresh servers on free ports, with their data and logs in a new temp dir.
#
# Sourced (what .ci/run does): exports the test environment into the caller and defines
#   sitevault_cloud_stop, which kills the servers and removes the temp dir.
#   Note: sourcing turns on `set -euo pipefail` in the caller, and a failure exits it.
# Executed: leaves the servers running; `source` the env file it writes, and stop them
#   with `kill $(cat <tmp>/pids)`.
# Either way the environment is also written as `export K=V` lines to
#   ${SITEVAULT_CI_ENV:-<tmp>/cloud.env}.
# Needs: bash, node + npm, python3 (with venv); what is missing is installed with apt-get (as
# root, or through sudo). Cache: ${SITEVAULT_CI_CACHE:-$HOME/.cache/sitevault-ci}.
set -euo pipefail

# Azurite's documented, public emulator key (not a secret).
SITEVAULT_AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
# Shell variables, not exported: only the shell that started the servers stops them.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  SITEVAULT_CI_PIDS= SITEVAULT_CI_TMP=
else
  SITEVAULT_CI_PIDS=${SITEVAULT_CI_PIDS:-} SITEVAULT_CI_TMP=${SITEVAULT_CI_TMP:-}
fi

# Safe to call any number of times, and from an EXIT trap (never fails).
sitevault_cloud_stop() {
  local pid
  for pid in ${SITEVAULT_CI_PIDS:-}; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in ${SITEVAULT_CI_PIDS:-}; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "${SITEVAULT_CI_TMP:-}" && -d "$SITEVAULT_CI_TMP" ]]; then
    rm -rf "$SITEVAULT_CI_TMP" || true
  fi
  SITEVAULT_CI_PIDS=
  SITEVAULT_CI_TMP=
  return 0
}

_svc_t0=$(date +%s%N)
_svc_log() {
  local ms=$(( ($(date +%s%N) - _svc_t0) / 1000000 ))
  printf '[cloud-servers %d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"
}

# Logs "FAILED: $1", prints the files named after it, stops what was started, exits 1.
_svc_die() {
  _svc_log "FAILED: $1"
  shift
  local f
  for f in "$@"; do
    [[ -s "$f" ]] && { echo "----- $f" >&2; cat "$f" >&2; }
  done
  sitevault_cloud_stop
  exit 1
}

# Runs "$@" with output to $log; on failure prints the log and exits 1.
_svc_quiet() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 || _svc_die "$*" "$log"
}

# Waits until $url answers HTTP (any status) while pid $2 lives; else prints log $3 and exits 1.
_svc_wait_http() {
  local url=$1 pid=$2 log=$3 name=$4
  if ! python3 - "$url" "$pid" <<'PY'
import os, sys, time, urllib.error, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("process %d exited" % pid)
    try:
        urllib.request.urlopen(url, timeout=2).close()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)  # any HTTP status means the server answers
    except OSError:
        time.sleep(0.2)
sys.exit("no HTTP answer from %s within 30 s" % url)
PY
  then
    _svc_die "$name did not answer on $url" "$log"
  fi
}

# Prints the HTTP status of an unsigned or SharedKey-signed request, body from $SVC_BODY.
# usage: _svc_http METHOD URL [azure-account azure-key] [Header:Value ...]
_svc_http() {
  python3 - "$@" <<'PY'
import base64, email.utils, hashlib, hmac, os, sys, urllib.error, urllib.parse, urllib.request
method, url, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
account = key = None
if len(rest) >= 2 and ":" not in rest[0]:
    account, key, rest = rest[0], rest[1], rest[2:]
headers = dict(h.split(":", 1) for h in rest)
body = os.environ.get("SVC_BODY", "").encode()
if method in ("PUT", "POST") and not any(k.lower() == "content-type" for k in headers):
    headers["Content-Type"] = "application/octet-stream"  # else urllib adds a form type
if account:
    headers["x-ms-date"] = email.utils.formatdate(usegmt=True)
    headers["x-ms-version"] = "2021-08-06"
    u = urllib.parse.urlsplit(url)
    h = {k.lower(): v.strip() for k, v in headers.items()}
    std = ["content-encoding", "content-language", "content-length", "content-md5",
           "content-type", "date", "if-modified-since", "if-match", "if-none-match",
           "if-unmodified-since", "range"]
    if body:
        h["content-length"] = str(len(body))
    canon_headers = "".join("%s:%s\n" % (k, h[k]) for k in sorted(h) if k.startswith("x-ms-"))
    canon_resource = "/" + account + u.path
    for k, vs in sorted(urllib.parse.parse_qs(u.query).items()):
        canon_resource += "\n%s:%s" % (k.lower(), ",".join(sorted(vs)))
    to_sign = "\n".join([method] + [h.get(k, "") for k in std]) + "\n" + canon_headers + canon_resource
    sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest())
    headers["Authorization"] = "SharedKey %s:%s" % (account, sig.decode())
req = urllib.request.Request(url, data=body if method in ("PUT", "POST") else None,
                             method=method, headers=headers)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        status, text = r.status, r.read()
except urllib.error.HTTPError as e:
    status, text = e.code, e.read()
print(status)
if status >= 300:
    sys.stderr.write(text.decode(errors="replace")[:500] + "\n")
PY
}

# A fresh machine has only the Rust toolchain: install node, npm and python3 with venv from
# Debian when a command is missing (an existing node, e.g. from NodeSource, is left alone).
_svc_need_tools() {
  local -a missing=() sudo=()
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  command -v python3 >/dev/null || missing+=(python3)
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then missing+=(python3-venv); fi
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) == 0 ]] || sudo=(sudo -n)
  _svc_log "installing ${missing[*]} with apt-get"
  "${sudo[@]}" apt-get -qq update >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -qq -y --no-install-recommends install "${missing[@]}" >/dev/null
}

_sitevault_cloud_main() {
  _svc_need_tools
  local cache=${SITEVAULT_CI_CACHE:-$HOME/.cache/sitevault-ci}
  local azdir=$cache/azurite venv=$cache/venv
  mkdir -p "$cache"
  if [[ -n "$SITEVAULT_CI_PIDS" ]]; then
    _svc_log "stopping the servers this shell started before (pids:$SITEVAULT_CI_PIDS)"
    sitevault_cloud_stop
  fi

  # 1. Install, skipped when the cache already has a working copy.
  local azbin=$azdir/node_modules/.bin/azurite-blob azver=
  if [[ -x "$azbin" && -f "$azdir/node_modules/azurite/package.json" ]]; then
    azver=$(node -p 'require(process.argv[1]).version' "$azdir/node_modules/azurite/package.json")
  fi
  if [[ "$azver" == 3.* ]]; then
    _svc_log "azurite $azver already installed in $azdir"
  else
    mkdir -p "$azdir"
    _svc_quiet "$cache/npm-install.log" \
      npm install --prefix "$azdir" azurite@3 --no-audit --no-fund --loglevel=error
    azver=$(node -p 'require(process.argv[1]).version' "$azdir/node_modules/azurite/package.json")
    _svc_log "installed azurite $azver from npm into $azdir"
  fi

  # moto_server is in every moto wheel but needs flask + flask-cors; moto's `server` extra
  # brings those plus every service's dependencies, so take `s3` plus the two Flask packages.
  local motover=
  if [[ -x "$venv/bin/moto_server" ]]; then
    motover=$("$venv/bin/python" -c 'import flask, flask_cors, yaml, moto; print(moto.__version__)' 2>/dev/null) || motover=
  fi
  if [[ -n "$motover" ]]; then
    _svc_log "moto $motover already installed in $venv"
  else
    rm -rf "$venv"
    _svc_quiet "$cache/pip-install.log" python3 -m venv "$venv"
    _svc_quiet "$cache/pip-install.log" \
      "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
      'moto[s3]>=5,<6' 'flask!=2.2.0,!=2.2.1' flask-cors
    motover=$("$venv/bin/python" -c 'import moto; print(moto.__version__)')
    _svc_log "installed moto $motover from PyPI into $venv"
  fi

  # 2. Start both on free loopback ports (both ports held at once, so they differ).
  SITEVAULT_CI_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sitevault-cloud.XXXXXX")
  local tmp=$SITEVAULT_CI_TMP ports s3port azport
  ports=$(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
  read -r s3port azport <<<"$ports"

  mkdir -p "$tmp/azurite"
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$s3port" </dev/null >"$tmp/moto.log" 2>&1 &
  local motopid=$!
  SITEVAULT_CI_PIDS="$SITEVAULT_CI_PIDS $motopid"
  "$azbin" --blobHost 127.0.0.1 --blobPort "$azport" --location "$tmp/azurite" \
    --disableTelemetry --skipApiVersionCheck --loose </dev/null >"$tmp/azurite.log" 2>&1 &
  local azpid=$!
  SITEVAULT_CI_PIDS="$SITEVAULT_CI_PIDS $azpid"
  echo "$SITEVAULT_CI_PIDS" >"$tmp/pids"

  local s3url=http://127.0.0.1:$s3port azurl=http://127.0.0.1:$azport
  _svc_wait_http "$s3url/" "$motopid" "$tmp/moto.log" moto_server
  _svc_log "moto_server (pid $motopid) answers on $s3url, log $tmp/moto.log"
  _svc_wait_http "$azurl/" "$azpid" "$tmp/azurite.log" azurite-blob
  _svc_log "azurite-blob (pid $azpid) answers on $azurl, log $tmp/azurite.log"

  # 3. Bucket and container (409: already there, fine).
  local status
  status=$(SVC_BODY= _svc_http PUT "$s3url/sitevault-test" 2>"$tmp/mkbucket.err") || status=error
  case $status in
    200 | 201 | 409) _svc_log "S3 bucket sitevault-test: HTTP $status" ;;
    *) _svc_die "S3 bucket sitevault-test: HTTP $status" "$tmp/mkbucket.err" "$tmp/moto.log" ;;
  esac
  # A second bucket created with S3 Object Lock (which turns on versioning), for immutable vaults.
  status=$(SVC_BODY= _svc_http PUT "$s3url/sitevault-lock" x-amz-bucket-object-lock-enabled:true \
    2>"$tmp/mklockbucket.err") || status=error
  case $status in
    200 | 201 | 409) _svc_log "S3 bucket sitevault-lock (Object Lock): HTTP $status" ;;
    *) _svc_die "S3 bucket sitevault-lock: HTTP $status" "$tmp/mklockbucket.err" "$tmp/moto.log" ;;
  esac
  status=$(SVC_BODY= _svc_http PUT "$azurl/devstoreaccount1/sitevault-test?restype=container" \
    devstoreaccount1 "$SITEVAULT_AZURITE_KEY" 2>"$tmp/mkcontainer.err") || status=error
  case $status in
    200 | 201 | 409) _svc_log "Azure container sitevault-test: HTTP $status" ;;
    *) _svc_die "Azure container sitevault-test: HTTP $status" "$tmp/mkcontainer.err" "$tmp/azurite.log" ;;
  esac

  # 4. The tests' environment (read by object_store's *Builder::from_env()).
  local envfile=${SITEVAULT_CI_ENV:-$tmp/cloud.env} kv
  local -a vars=(
    "SITEVAULT_TEST_S3=s3://sitevault-test"
    "SITEVAULT_TEST_S3_LOCK=s3://sitevault-lock"
    "AWS_ENDPOINT=$s3url"
    "AWS_ALLOW_HTTP=true"
    "AWS_ACCESS_KEY_ID=testing"
    "AWS_SECRET_ACCESS_KEY=testing"
    "AWS_REGION=us-east-1"
    "SITEVAULT_TEST_AZ=az://sitevault-test"
    "AZURE_STORAGE_USE_EMULATOR=true"
    "AZURITE_BLOB_STORAGE_URL=$azurl"
    "AZURE_STORAGE_ACCOUNT_NAME=devstoreaccount1"
    "AZURE_STORAGE_ACCOUNT_KEY=$SITEVAULT_AZURITE_KEY"
  )
  mkdir -p "$(dirname "$envfile")"
  : >"$envfile"
  for kv in "${vars[@]}"; do
    export "${kv?}"
    printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$envfile"
  done
  _svc_log "environment exported and written to $envfile (pids:$SITEVAULT_CI_PIDS)"
}

_sitevault_cloud_main
