#!/usr/bin/env bash
# A throwaway single-node Ceph cluster with its RADOS Gateway: the S3 endpoint of the tests.
#
#   infra/ceph-s3.sh start DIR [--watch PID]
#       Starts it with all its state in DIR (missing or empty), then prints the endpoint and
#       its S3 keys as EVIDENCE_TEST_S3_ENDPOINT=... lines. With --watch, the cluster stops
#       itself once process PID has ended, so a test run that was killed leaves nothing behind.
#   infra/ceph-s3.sh env DIR     prints those lines again
#   infra/ceph-s3.sh stop DIR    ends every process started for DIR, then removes DIR
#   infra/ceph-s3.sh stop-gateway DIR / start-gateway DIR
#       Stops the gateway alone (the cluster and every object stay) and starts it again on
#       the same port: an S3 outage for the fault tests (tests/topology).
#
# One monitor (a v1 address on a free port of 127.0.0.1), one manager, one OSD keeping
# objects in memory (memstore), pools of size 1, cephx keys for each daemon, and radosgw on
# another free port. Every key (cephx and S3) is generated per run and lives only in DIR.
# Nothing is shared with a system cluster: every path and port is named in DIR/ceph.conf.
# Needs Debian's radosgw, ceph-mon, ceph-osd, ceph-mgr and ceph-common (infra/test-services.sh).
set -euo pipefail

PYTHON=${PYTHON:-python3}
# The region the tests sign with and send as the LocationConstraint (tests/support/s3.py).
REGION=${EVIDENCE_TEST_S3_REGION:-eu-west-2}
# Room for the objects of a whole test run, in memory (used as filled, not reserved).
MEMSTORE_BYTES=${EVIDENCE_TEST_CEPH_MEMSTORE_BYTES:-$((8 * 1024 * 1024 * 1024))}
START_TIMEOUT=${EVIDENCE_TEST_CEPH_TIMEOUT:-120}

die() { echo "ceph-s3: $*" >&2; exit 1; }

usage() { die "usage: $0 start DIR [--watch PID] | env DIR | stop DIR | stop-gateway DIR | start-gateway DIR"; }

ceph_() { timeout 60 ceph -c "$DIR/ceph.conf" "$@"; }

uuid() { cat /proc/sys/kernel/random/uuid; }

free_ports() {  # N distinct free ports of 127.0.0.1, one a line
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for sock in held:
    sock.bind(("127.0.0.1", 0))
print("\n".join(str(sock.getsockname()[1]) for sock in held))
EOF
}

write_conf() {
  local mon_port=$1 rgw_port=$2
  cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $(uuid)
mon host = v1:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
log to stderr = false
err to stderr = false
crash dir = $DIR/crash
mon data = $DIR/mon
mgr data = $DIR/mgr
osd data = $DIR/osd
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# Every map change (a new pool, an OSD booting) waits this long for company; the default
# (1 s) makes the first start several seconds slower.
paxos propose interval = 0.05

[mgr]
mgr initial modules =

[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw thread pool size = 64
rgw enable usage log = false
rgw dynamic resharding = false
EOF
}

make_keyring() {
  local keyring=$DIR/keyring
  ceph-authtool --create-keyring "$keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$keyring" --gen-key -n mgr.x \
    --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$keyring" --gen-key -n osd.0 \
    --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
  ceph-authtool "$keyring" --gen-key -n client.rgw.gw \
    --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  chmod 600 "$keyring"
}

launch() {  # NAME COMMAND...: runs a daemon in the foreground of a session of its own
  local name=$1
  shift
  setsid "$@" -c "$DIR/ceph.conf" -f </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo $! >"$DIR/run/$name.started"
}

wait_listening() {  # the gateway listens once it is ready to serve
  local port=$1 deadline=$((SECONDS + START_TIMEOUT))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    alive client.rgw.gw || die "radosgw exited: $(tail -5 "$DIR/log/client.rgw.gw.log" 2>/dev/null)"
    [ $SECONDS -lt $deadline ] || die "radosgw did not listen on 127.0.0.1:$port within ${START_TIMEOUT}s"
    sleep 0.1
  done
}

alive() {
  local pid
  pid=$(cat "$DIR/run/$1.started" 2>/dev/null) && kill -0 "$pid" 2>/dev/null
}

start() {
  command -v radosgw >/dev/null || die "radosgw is not installed (infra/test-services.sh installs it)"
  [ ! -e "$DIR" ] || [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty"
  mkdir -p "$DIR"/{run,log,crash,mon,mgr,osd}
  # If anything below fails, nothing is left running (and the logs say why).
  trap '[ -f "$DIR/env" ] || failed' EXIT

  local ports mon_port rgw_port
  ports=$(free_ports 2)
  mon_port=$(sed -n 1p <<<"$ports")
  rgw_port=$(sed -n 2p <<<"$ports")
  write_conf "$mon_port" "$rgw_port"
  make_keyring

  # A plain --add with a port other than 6789 gives a v2-only address, on which v1 clients hang.
  monmaptool --create --fsid "$(sed -n 's/^fsid = //p' "$DIR/ceph.conf")" \
    --addv a "[v1:127.0.0.1:$mon_port]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$DIR/ceph.conf" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" \
    >>"$DIR/log/mkfs.out" 2>&1
  launch mon.a ceph-mon -i a

  local osd_uuid
  osd_uuid=$(uuid)
  ceph-osd -c "$DIR/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/mkfs.out" 2>&1
  ceph_ osd new "$osd_uuid" 0 >/dev/null
  launch osd.0 ceph-osd -i 0
  launch mgr.x ceph-mgr -i x

  # radosgw-admin waits for the OSD itself (its first write creates the pools).
  local keys access secret
  keys=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(10).upper(), secrets.token_urlsafe(30))')
  access=${keys% *}
  secret=${keys#* }
  # The first radosgw-admin command also creates the default zone and zonegroup.
  timeout "$START_TIMEOUT" radosgw-admin -c "$DIR/ceph.conf" user create --uid evidence-tests \
    --display-name "evidence tests" --access-key "$access" --secret-key "$secret" >>"$DIR/log/admin.out" 2>&1
  # CreateBucket accepts a LocationConstraint only when it is the zonegroup's API name.
  # Set before the gateway's first start, so it needs no restart.
  timeout 60 radosgw-admin -c "$DIR/ceph.conf" zonegroup modify --rgw-zonegroup=default \
    --api-name "$REGION" >>"$DIR/log/admin.out" 2>&1
  launch client.rgw.gw radosgw -n client.rgw.gw
  wait_listening "$rgw_port"

  cat >"$DIR/env" <<EOF
EVIDENCE_TEST_S3_ENDPOINT=http://127.0.0.1:$rgw_port
EVIDENCE_TEST_S3_ACCESS_KEY=$access
EVIDENCE_TEST_S3_SECRET_KEY=$secret
EOF
  chmod 600 "$DIR/env"
  cat "$DIR/env"
}

gateway_port() { sed -n 's/^EVIDENCE_TEST_S3_ENDPOINT=http:\/\/127.0.0.1://p' "$DIR/env"; }

stop_gateway() {
  local pid
  pid=$(cat "$DIR/run/client.rgw.gw.started" 2>/dev/null) || die "no gateway was started in $DIR"
  ours "$pid" || return 0
  kill -TERM "$pid"
  local deadline=$((SECONDS + 20))
  while ours "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  # A gateway that ignores SIGTERM is ended outright: the point is that it is gone.
  if ours "$pid"; then kill -KILL "$pid"; fi
}

start_gateway() {
  local pid
  pid=$(cat "$DIR/run/client.rgw.gw.started" 2>/dev/null) || die "no gateway was started in $DIR"
  ! ours "$pid" || die "the gateway of $DIR is running"
  launch client.rgw.gw radosgw -n client.rgw.gw
  wait_listening "$(gateway_port)"
}

failed() {
  local log
  for log in "$DIR"/log/*; do
    [ -s "$log" ] && { echo "--- ${log##*/}"; tail -n 15 "$log"; }
  done >&2
  stop >/dev/null 2>&1 || true
}

watch() {  # stops the cluster once process $1 has ended
  local owner=$1
  while kill -0 "$owner" 2>/dev/null; do sleep 1; done
  stop
}

ours() {  # PID NAME: is PID still the daemon NAME started for DIR (not a reused number)?
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *" -c $DIR/ceph.conf "* ]] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null
}

stop() {
  [ -d "$DIR" ] || return 0
  local name pid pids=()
  # The state is thrown away, so no daemon needs a clean shutdown (on one, memstore would
  # first copy every object to disk, and the others take seconds): each is killed outright.
  for name in client.rgw.gw mgr.x osd.0 mon.a; do
    pid=$(cat "$DIR/run/$name.started" 2>/dev/null) || continue
    if ours "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local deadline=$((SECONDS + 20))
  for pid in "${pids[@]}"; do
    while ours "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  done
  pid=$(cat "$DIR/run/watch.pid" 2>/dev/null) || pid=
  if [ -n "$pid" ] && [ "$pid" != "$$" ] && [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *" _watch $DIR "* ]]; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  rm -rf "$DIR"
}

[ $# -ge 2 ] || usage
command=$1
DIR=$(realpath -m "$2")
shift 2
case $command in
  start)
    watch_pid=
    if [ $# -gt 0 ]; then
      [ "$1" = --watch ] && [ $# -eq 2 ] || usage
      watch_pid=$2
    fi
    start
    if [ -n "$watch_pid" ]; then
      setsid "$0" _watch "$DIR" "$watch_pid" </dev/null >/dev/null 2>&1 &
      echo $! >"$DIR/run/watch.pid"
    fi
    ;;
  _watch) [ $# -eq 1 ] || usage; watch "$1" ;;
  env) [ -f "$DIR/env" ] || die "no cluster in $DIR"; cat "$DIR/env" ;;
  stop) [ $# -eq 0 ] || usage; stop ;;
  stop-gateway) [ $# -eq 0 ] && [ -f "$DIR/env" ] || usage; stop_gateway ;;
  start-gateway) [ $# -eq 0 ] && [ -f "$DIR/env" ] || usage; start_gateway ;;
  *) usage ;;
esac
