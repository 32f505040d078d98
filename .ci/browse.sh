#!/usr/bin/env bash
# Sourced by .ci/run: the real clients the browse tests (tests/it/browse.rs) drive.
#   fuse3   fusermount3, which `sitevault mount` mounts through (fuser's pure-Rust mount)
#   rclone  a WebDAV client that copies a recovery point
#   cadaver a command-line WebDAV client that lists and downloads (tests/it/dav_clients.rs)
#   openssl makes the test certificate for `serve --tls-cert`
#   chromium, chromium-driver: the recovery console's tests (tests/it/console.rs) drive real
#           headless Chromium through WebDriver
# Installs what is missing with apt-get (as root, or through sudo), checks /dev/fuse, and exports
# SITEVAULT_TEST_REQUIRE_FUSE=1 and SITEVAULT_TEST_REQUIRE_CHROMIUM=1 so those tests fail instead
# of skipping when a client is missing.
set -euo pipefail

sitevault_browse_setup() {
  local -a pkgs=(fuse3 rclone cadaver openssl curl chromium chromium-driver) missing=() sudo=()
  local p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    [[ $(id -u) == 0 ]] || sudo=(sudo -n)
    echo "browse: installing ${missing[*]}"
    "${sudo[@]}" apt-get -qq update >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get -qq -y --no-install-recommends install "${missing[@]}" >/dev/null
  fi
  if [[ ! -c /dev/fuse ]]; then
    echo "browse: /dev/fuse is missing: the FUSE mount tests cannot run" >&2
    return 1
  fi
  echo "browse: $(fusermount3 -V), $(rclone --version | head -n 1), $(chromedriver --version | head -n 1)"
  export SITEVAULT_TEST_REQUIRE_FUSE=1
  export SITEVAULT_TEST_REQUIRE_CHROMIUM=1
}

sitevault_browse_setup
