#!/usr/bin/env bash
# Installs everything qlake needs to build and test on Debian 12: the C++ libraries from
# Debian's packages and a Python virtualenv (.venv) with the pinned requirements-dev.txt.
# Idempotent: a second run installs nothing new and takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libisal-dev isal                 # gzip (igzip), library and CLI
  libhowardhinnant-date-dev tzdata # America/New_York conversions
  libfmt-dev libspdlog-dev libcli11-dev libyaml-cpp-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format-14
  libssl-dev                       # SHA-256/MD5 of downloads (OpenSSL libcrypto)
  libcurl4-openssl-dev             # alert webhooks (pipeline)
  chromium                         # headless check of qlake report --html
  python3-venv python3-dev ca-certificates  # python3-dev: headers for the qlake module
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements-dev.sha256
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing pinned Python packages into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

# pyqlib 0.9.7 in its own venv (old pandas/numpy), for the Qlib export tests and benchmark.
if [ ! -x .venv-qlib/bin/python ]; then
  echo "setup: creating .venv-qlib with $($PYTHON --version)"
  "$PYTHON" -m venv .venv-qlib
fi
stamp=.venv-qlib/.requirements-qlib.sha256
want=$(sha256sum requirements-qlib.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing pinned pyqlib and its loader dependencies into .venv-qlib"
  .venv-qlib/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-qlib.txt
  echo "$want" > "$stamp"
fi
echo "setup: ok"
