#!/bin/sh
# Starts redis-server with a password, always: REDIS_PASSWORD when set, otherwise one
# generated on the first start and kept. Either way it is written to REDIS_PASSWORD_FILE
# (mode 0440, group app through the directory's setgid bit), from which the api and
# worker containers read it. The password reaches redis-server on stdin, never in argv.
set -eu
secret=${REDIS_PASSWORD_FILE:?REDIS_PASSWORD_FILE names the shared password file}
umask 077
if [ -n "${REDIS_PASSWORD:-}" ]; then
    printf '%s' "$REDIS_PASSWORD" >"$secret.new"
elif [ ! -s "$secret" ]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret.new"
fi
if [ -e "$secret.new" ]; then
    chmod 0440 "$secret.new"
    mv -f "$secret.new" "$secret"
fi
# In a redis.conf string, backslash and double quote are escaped.
quoted=$(sed 's/[\\"]/\\&/g' "$secret")
# redis-server replaces this shell (fed by a here-document: in a pipeline it would run in a
# child), so `docker stop`'s SIGTERM reaches it and it shuts down cleanly, AOF flushed, instead
# of staying behind the shell (which, as PID 1, ignores the signal until the SIGKILL 10 s later).
exec redis-server - "$@" <<EOF
requirepass "$quoted"
EOF
