#!/bin/sh
# Writes users.acl with the password of user disputesync filled in, to
# standard output: REDIS_DISPUTESYNC_PASSWORD=... render-acl.sh > /etc/redis/users.acl
# (ACL files hold no comments and read no environment, so the grants are
# explained in deploy/README.md and the password goes in here, as the
# SHA-256 Redis stores.)
# Usage: render-acl.sh [users.acl]   (default: the one beside this script)
set -eu
: "${REDIS_DISPUTESYNC_PASSWORD:?set REDIS_DISPUTESYNC_PASSWORD}"
in=${1:-$(dirname "$0")/users.acl}
hash=$(printf '%s' "$REDIS_DISPUTESYNC_PASSWORD" | sha256sum | cut -d' ' -f1)
sed "s/#REPLACE_WITH_SHA256_HEX/#$hash/" "$in"
