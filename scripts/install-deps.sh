#!/usr/bin/env bash
# Installs what gantry needs to build, test and benchmark, from Debian 12's archive only.
set -euo pipefail
packages=(
  build-essential cmake g++ pkg-config
  libboost-dev libpython3.11-dev python3.11-dev libconcurrentqueue-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libtoml11-dev nlohmann-json3-dev
  python3 python3-venv python3-django python3-requests python3-pytest python3-prometheus-client gunicorn
  zlib1g-dev libbrotli-dev libzstd-dev libdeflate-dev libisal-dev libhiredis-dev
  python3-whitenoise python3-brotli python3-zstandard brotli zstd
  python3-uvloop python3-uvicorn python3-httptools python3-starlette python3-httpx daphne python3-hypercorn
  libmimalloc-dev
  python3-websockets python3-django-channels python3-channels-redis
  nginx-light redis-server
  curl wrk procps util-linux
  clang libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
