#!/usr/bin/env bash
# A Docker Engine for `docker-compose up` and the compose test: Debian's docker.io (dockerd,
# containerd, runc) and docker-compose 1.29, then dockerd started in the background when none
# answers (these machines have no systemd). Idempotent; as root with no stdin.
#
# What works here (checked on Debian 12, kernel 6.x, ext4 root): the overlay2 storage driver
# (dockerd picks it by itself; on a filesystem overlay2 cannot sit on it falls back to vfs, which
# works but copies every layer), iptables through the nft backend (bridge networks, published
# ports, name resolution between containers), cgroup v1 with the cgroupfs driver. Containers have
# no registry to pull from: every image is built locally (scripts/docker-images.sh).
# Log: /var/log/dockerd.log. DOCKERD_FLAGS adds options (e.g. "--iptables=false" on a kernel
# without netfilter: published ports then go through docker-proxy, containers still see each other).
set -euo pipefail

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

need=()
for pkg in docker.io docker-compose; do have_pkg "$pkg" || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "docker-engine: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if $SUDO docker info >/dev/null 2>&1; then exit 0; fi

# A dockerd that died (machine restarted, session ended) may leave its PID file; no dockerd answers
# (docker info failed), so it goes.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then $SUDO rm -f /var/run/docker.pid; fi
echo "docker-engine: starting dockerd (log: /var/log/dockerd.log)"
# setsid + nohup: it outlives this script and the shell that ran it.
# shellcheck disable=SC2086
$SUDO setsid nohup dockerd ${DOCKERD_FLAGS:-} >>/var/log/dockerd.log 2>&1 </dev/null &
for _ in $(seq 120); do
  if $SUDO docker info >/dev/null 2>&1; then
    echo "docker-engine: dockerd is up ($($SUDO docker info --format '{{.ServerVersion}}, storage driver {{.Driver}}'))"
    exit 0
  fi
  sleep 0.5
done
echo "docker-engine: dockerd did not answer within 60 s; the end of /var/log/dockerd.log:" >&2
tail -n 30 /var/log/dockerd.log >&2
exit 1
