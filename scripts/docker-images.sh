#!/usr/bin/env bash
# Builds every image docker-compose.yml runs, with no container registry: only Debian's packages
# (from this machine's mirror), NuGet (through the .NET SDK here) and npm. Idempotent, and cached:
# what exists is kept, and Docker's layer cache makes a second run take seconds.
#   1. the Docker Engine (scripts/docker-engine.sh) and s3rver in .tools/ (scripts/install-s3rver.sh);
#   2. base images: Debian bookworm by debootstrap (minbase, like debian:bookworm-slim), with this
#      machine's apt sources, then `docker import`; the .NET runtime of the SDK here, imported as an
#      image holding /usr/share/dotnet (like Microsoft's runtime image);
#   3. the services published on this machine into .docker/app (`dotnet publish src/Cli`), s3rver
#      (.tools/node_modules) copied into .docker/s3rver;
#   4. `docker-compose build` of the services' image (target prebuilt), s3rver's and Prometheus'.
# The base image names are the defaults in docker-compose.yml (STORAGE_DEBIAN_IMAGE,
# STORAGE_DOTNET_IMAGE), read from there. As root, no stdin.
# Usage: bash scripts/docker-images.sh [--no-build]
#   --no-build: publish from the Release build already made (scripts/test.sh builds the solution first).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
publish_build=()
[ "${1:-}" = "--no-build" ] && publish_build=(--no-build)

bash scripts/docker-engine.sh
bash scripts/install-s3rver.sh

# A ${NAME:-default} of docker-compose.yml, unless NAME is set here.
compose_default() {
  local value
  value=$(sed -n "s/.*\${$1:-\([^}]*\)}.*/\1/p" docker-compose.yml | head -n 1)
  [ -n "$value" ] || { echo "docker-images: no \${$1:-...} default in docker-compose.yml" >&2; exit 1; }
  echo "${!1:-$value}"
}
DEBIAN_IMAGE=$(compose_default STORAGE_DEBIAN_IMAGE)
DOTNET_IMAGE=$(compose_default STORAGE_DOTNET_IMAGE)
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# --- Debian bookworm, minbase ---
if ! have_image "$DEBIAN_IMAGE"; then
  command -v debootstrap >/dev/null || {
    echo "docker-images: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  # The mirror this machine's apt uses (its first Debian source), unless DEBIAN_MIRROR says.
  mirror=${DEBIAN_MIRROR:-}
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d /var/tmp/storage-debootstrap.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "docker-images: debootstrap bookworm (minbase) from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  # Builds run apt-get inside it: give it the sources (bookworm-updates, security) and the apt
  # settings this machine needs for them (a snapshot mirror's Release files are past Valid-Until).
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    rm -f "$root/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  fi
  apt-config dump | grep -E '^Acquire::Check-(Valid-Until|Date) ' >"$root/etc/apt/apt.conf.d/50storage-host" || true
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import -c 'CMD ["bash"]' -c 'LABEL storage.image=debian' - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$root"
  trap - EXIT
  echo "docker-images: $DEBIAN_IMAGE imported"
fi

# --- the .NET runtime (NETCore + AspNetCore) of the SDK on this machine ---
dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
newest() { find "$dotnet_root/shared/$1" -mindepth 1 -maxdepth 1 -name '10.*' -printf '%f\n' | sort -V | tail -n 1; }
core=$(newest Microsoft.NETCore.App)
aspnet=$(newest Microsoft.AspNetCore.App)
[ -n "$core" ] && [ -n "$aspnet" ] || { echo "docker-images: no .NET 10 runtime under $dotnet_root/shared" >&2; exit 1; }
if [ "$(docker image inspect -f '{{index .Config.Labels "storage.dotnet"}}' "$DOTNET_IMAGE" 2>/dev/null)" != "$core" ]; then
  echo "docker-images: importing .NET runtime $core (ASP.NET Core $aspnet) from $dotnet_root"
  tar -C "$dotnet_root" --transform 's,^,usr/share/dotnet/,S' -c dotnet host \
      "shared/Microsoft.NETCore.App/$core" "shared/Microsoft.AspNetCore.App/$aspnet" LICENSE.txt ThirdPartyNotices.txt \
    | docker import -c "LABEL storage.image=dotnet storage.dotnet=$core" - "$DOTNET_IMAGE" >/dev/null
fi

# --- the services, published on this machine (Release) ---
echo "docker-images: publishing the services into .docker/app"
rm -rf .docker/app.new
dotnet publish src/Cli -c Release "${publish_build[@]}" -o .docker/app.new -nologo -v q >/dev/null
rm -rf .docker/app
mv .docker/app.new .docker/app

# --- s3rver for its image: copied, since .tools may be a symlink (a worktree's), which a build context cannot follow ---
rm -rf .docker/s3rver
mkdir -p .docker/s3rver
cp -a .tools/node_modules .docker/s3rver/

# --- the images docker-compose.yml runs: one for every service of ours, s3rver's, Prometheus' ---
# docker-py builds through the API (no deprecation notice from the docker CLI's legacy builder).
COMPOSE_DOCKER_CLI_BUILD=0 docker-compose -f docker-compose.yml build -q proxy s3 prometheus
# Replaced builds of these images, untagged now, would pile up.
docker image prune -f --filter label=storage.image >/dev/null
echo "docker-images: ok ($((SECONDS - started)) s)"
