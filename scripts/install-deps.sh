#!/usr/bin/env bash
# Installs the Debian 12 packages the gateway builds and tests with (.ci/packages.txt). Idempotent:
# does nothing when every package is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t pkgs < <(grep -v '^\s*#' .ci/packages.txt | sed '/^\s*$/d')
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Postfix is only a test peer (smtp-sink, a private smtpd instance): keep the system MTA unconfigured.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
