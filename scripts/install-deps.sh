#!/usr/bin/env bash
# Installs everything the tests and the local cluster need. Idempotent; safe to run as root
# with no stdin (CI). Prints what it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in postgresql-15 postgresql-client-15 python3-grpcio python3-protobuf; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done
# Node.js runs s3rver, the S3 server the object store tests start (any node/npm on PATH will do).
command -v node >/dev/null && command -v npm >/dev/null || for pkg in nodejs npm; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "install-deps: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Debian's packaging creates the 'postgres' OS user; PostgreSQL refuses to run as root, so
# processes started as root run it as that user.
id postgres >/dev/null 2>&1 || { echo "install-deps: the postgres OS user is missing" >&2; exit 1; }

# s3rver goes into the project's .tools/ (gitignored), where the tests look for it.
bash scripts/install-s3rver.sh

# The Docker Engine (and docker-compose) the compose test runs the cluster on; dockerd is started when none runs.
bash scripts/docker-engine.sh

command -v dotnet >/dev/null || { echo "install-deps: the .NET SDK (dotnet) is required" >&2; exit 1; }
echo "install-deps: ok"
