#!/bin/sh
# Install what the real-program scenarios need, from Debian's packages, when missing.
# Exit 0 when everything is present afterwards; non-zero (with the list) otherwise.
# Daemons are never started by the packages' scripts (temporary policy-rc.d).
set -u
missing_pkgs() {
    need=""
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need="$need nginx"
    [ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] && [ -f /usr/lib/nginx/modules/ndk_http_module.so ] \
        || need="$need libnginx-mod-http-lua"
    command -v curl >/dev/null 2>&1 || need="$need curl"
    command -v uwsgi >/dev/null 2>&1 || need="$need uwsgi"
    [ -f /usr/lib/uwsgi/plugins/python3_plugin.so ] || need="$need uwsgi-plugin-python3"
    command -v hping3 >/dev/null 2>&1 || [ -x /usr/sbin/hping3 ] || need="$need hping3"
    command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
    command -v python3 >/dev/null 2>&1 || [ -x /usr/bin/python3 ] || need="$need python3"
    echo "$need"
}
need=$(missing_pkgs)
if [ -z "$need" ]; then
    echo "install-deps: everything present"
    exit 0
fi
echo "install-deps: installing:$need"
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: not root, cannot apt-get install:$need" >&2
    exit 1
fi
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null 2>&1 || apt-get update
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $need
rc=$?
[ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
still=$(missing_pkgs)
if [ -n "$still" ]; then
    echo "install-deps: STILL MISSING after apt-get (rc $rc):$still" >&2
    exit 1
fi
echo "install-deps: done"
