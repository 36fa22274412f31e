#!/bin/sh
# The nginx canary example, end to end, on this machine: three versions of a
# shop behind a real nginx. Tide deploys 1.0.0, walks a healthy canary (2.0.0)
# to 100 % through 20 % and 50 % with a probe through nginx after each, then
# catches a failing one (3.0.0), sends all traffic back to 2.0.0 and writes
# that back to git. See README.md beside this file.
#
# usage: run.sh [WORKDIR]        (default: a new temporary directory)
# Environment:
#   TIDE        the tide binary (default: tide on PATH)
#   NGINX_PORT  where nginx listens          } default: free loopback ports
#   V1_PORT, V2_PORT, V3_PORT  the backends  } picked at start
# Everything it starts is stopped when it exits, whatever happens. The config
# repo and its state stay in WORKDIR/config for a look afterwards.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

die() {
    echo "run.sh: $*" >&2
    exit 1
}
step() { printf '\n== %s\n' "$*"; }
run() {
    printf '$'
    for arg in "$@"; do
        case $arg in
        '' | *[!A-Za-z0-9_./:=@%+-]*) printf " '%s'" "$arg" ;;
        *) printf ' %s' "$arg" ;;
        esac
    done
    printf '\n'
    "$@"
}
# edit FILE SED-SCRIPT: sed -i, portably.
edit() {
    sed -e "$2" "$1" >"$1.new"
    mv "$1.new" "$1"
}

tide=$(command -v -- "${TIDE:-tide}") || die "tide not found: put it on PATH or set TIDE=/path/to/tide"
case $tide in
/*) ;;
*) tide="$PWD/$tide" ;; # the script changes directory below
esac
TIDE=$tide
export TIDE # the config repo's pre-commit hook finds tide through it
command -v nginx >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/usr/local/sbin" # Debian keeps nginx in /usr/sbin
export PATH
for program in nginx python3 git; do
    command -v "$program" >/dev/null 2>&1 || die "$program is needed (on Debian: apt-get install $program)"
done

work=${1:-$(mktemp -d)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
config="$work/config"
[ ! -e "$config" ] || die "$config exists: give a work directory without it"

# Ports: from the environment, else free ones picked now. Only digits go into the manifests.
ports=$(python3 "$here/client.py" free-ports 4)
set -- $ports
NGINX_PORT=${NGINX_PORT:-$1}
V1_PORT=${V1_PORT:-$2}
V2_PORT=${V2_PORT:-$3}
V3_PORT=${V3_PORT:-$4}
for port in "$NGINX_PORT" "$V1_PORT" "$V2_PORT" "$V3_PORT"; do
    case $port in
    '' | *[!0-9]*) die "a port must be a number, not '$port'" ;;
    esac
done

# Whatever happens from here on, stop what was started.
pids=""
nginx_pid=""
cleanup() {
    status=$?
    trap - EXIT
    if [ -n "$nginx_pid" ]; then
        kill -TERM "$nginx_pid" 2>/dev/null || :
        wait "$nginx_pid" 2>/dev/null || :
    fi
    for pid in $pids; do
        kill -TERM "$pid" 2>/dev/null || :
        wait "$pid" 2>/dev/null || :
    done
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "A config repo from the nginx-canary template (committed, pre-commit hook installed)"
run "$TIDE" init --template nginx-canary "$config"
cd "$config"
git config user.name "Tide Example"
git config user.email "example@tide.invalid"

step "This run's ports: nginx $NGINX_PORT; backends 1.0.0 $V1_PORT, 2.0.0 $V2_PORT, 3.0.0 $V3_PORT"
edit services/shop.yaml "s/listen: [0-9]*\$/listen: $NGINX_PORT/"
edit services/shop.yaml "s/\"1\\.0\\.0\": \"127\\.0\\.0\\.1:[0-9]*\"/\"1.0.0\": \"127.0.0.1:$V1_PORT\"/"
edit services/shop.yaml "s/\"2\\.0\\.0\": \"127\\.0\\.0\\.1:[0-9]*\"/\"2.0.0\": \"127.0.0.1:$V2_PORT\"/"
edit services/shop.yaml "s/\"3\\.0\\.0\": \"127\\.0\\.0\\.1:[0-9]*\"/\"3.0.0\": \"127.0.0.1:$V3_PORT\"/"
edit tide/analyses.yaml "s|http://127\\.0\\.0\\.1:[0-9]*/|http://127.0.0.1:$NGINX_PORT/|"
run git commit -q -am "shop: the ports of this run" # the hook validates what is committed
git show --stat --format=%s HEAD | cat

step "Backends (each answers its version; WORKDIR/fail-VERSION is its fail switch) and nginx"
for backend in "1.0.0 $V1_PORT" "2.0.0 $V2_PORT" "3.0.0 $V3_PORT"; do
    set -- $backend
    python3 "$here/backend.py" "$1" "$2" "$work/fail-$1" &
    pids="$pids $!"
    echo "$!" >>"$work/pids"
    python3 "$here/client.py" wait "http://127.0.0.1:$2/"
done
run nginx -t -q -p nginx -e error.log -c nginx.conf
nginx -p "$config/nginx" -e error.log -c nginx.conf -g 'daemon off;' &
nginx_pid=$!
echo "$nginx_pid" >>"$work/pids"
tries=0
until [ "$(cat nginx/nginx.pid 2>/dev/null)" = "$nginx_pid" ]; do
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx did not start: $(cat nginx/error.log 2>/dev/null)"
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || die "nginx did not start in 10 s"
    sleep 0.1
done
echo "nginx runs (pid $nginx_pid), prefix $config/nginx"

url="http://127.0.0.1:$NGINX_PORT/"

step "Deploy 1.0.0: a first deployment goes straight to 100 %"
run "$TIDE" reconcile
run python3 "$here/client.py" sample "$url" 20 1.0.0

step "A healthy canary: 2.0.0 at 20 %, probe, 50 %, probe, 100 %"
edit services/shop.yaml 's/^  version: "1\.0\.0"$/  version: "2.0.0"/'
run git commit -q -am "shop 2.0.0"
run "$TIDE" plan
run "$TIDE" reconcile --watch
run python3 "$here/client.py" sample "$url" 20 2.0.0

step "A failing canary: 3.0.0 with its fail switch on (every second request gets HTTP 500)"
touch "$work/fail-3.0.0"
edit services/shop.yaml 's/^  version: "2\.0\.0"$/  version: "3.0.0"/'
run git commit -q -am "shop 3.0.0"
if run "$TIDE" reconcile --watch; then
    die "3.0.0 should have failed its analysis"
fi
run "$TIDE" status
"$TIDE" status | grep -q "RolledBack" || die "shop@prod should be RolledBack"
run git log --format='%h %s' -4
run python3 "$here/client.py" sample "$url" 20 2.0.0

step "Done: 2.0.0 serves, 3.0.0 was rolled back and git says so. The config repo is $config."
