#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need, builds, runs every test project,
# and ends with one summary line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build Storage.sln -c Release -nologo -v q || exit 1
# The images of docker-compose.yml, for its test on the Docker Engine (cached: seconds when nothing changed).
bash scripts/docker-images.sh --no-build || exit 1
log=$(mktemp)
# The console logger at "minimal" still names each failed test with its message and stack.
dotnet test Storage.sln -c Release --no-build -nologo -v q --logger "console;verbosity=minimal" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# dotnet prints one "Passed!/Failed!  - Failed: F, Passed: P, Skipped: S, Total: T" line per test assembly.
awk '/ - Failed: *[0-9]+, Passed: *[0-9]+, Skipped: *[0-9]+/ {
       for (i = 1; i <= NF; i++) { gsub(",", "", $(i+1));
         if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log"
exit "$status"
