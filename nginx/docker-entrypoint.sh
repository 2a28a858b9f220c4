#!/bin/sh
# The nginx image's start (nginx/Dockerfile): derive the limits from the API's settings,
# render every $NGINX_TEMPLATE_DIR/<path>.template into $NGINX_CONF_DIR/<path> with the
# variables that are defined (as scripts/stack.py's safe_substitute does for `make up`;
# nginx's own $variables stay), then run nginx in the foreground.
set -eu
. "$NGINX_TEMPLATE_DIR/limits.envsh"
defined=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p')
cd "$NGINX_TEMPLATE_DIR"
find . -name '*.template' | while read -r template; do
    out="$NGINX_CONF_DIR/${template#./}"
    out="${out%.template}"
    mkdir -p "$(dirname "$out")"
    envsubst "$defined" <"$template" >"$out"
done
exec nginx -p "$NGINX_PREFIX/" -e stderr -c "$NGINX_CONF_DIR/nginx.conf" -g 'daemon off;'
