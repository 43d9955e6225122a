#!/usr/bin/env bash
# s3rver, the S3 server of the object store tests and of docker-compose.yml's `s3` service, into the
# project's .tools/ (gitignored). Idempotent; needs Node.js and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
S3RVER_VERSION=3.7.1
installed=$(node -p "require('./.tools/node_modules/s3rver/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$S3RVER_VERSION" ]; then
  echo "install-s3rver: installing s3rver $S3RVER_VERSION into .tools/"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --no-save --loglevel=error "s3rver@$S3RVER_VERSION" >/dev/null
fi
