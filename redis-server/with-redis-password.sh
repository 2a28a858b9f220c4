#!/bin/sh
# Entrypoint of the api, worker and trainer images (and their healthchecks): exports REDIS_PASSWORD
# from REDIS_PASSWORD_FILE, the secret the redis service writes, then runs the command.
# Without REDIS_PASSWORD_FILE the environment is passed on as it is.
set -eu
if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    REDIS_PASSWORD=$(cat "$REDIS_PASSWORD_FILE")
    export REDIS_PASSWORD
fi
exec "$@"
