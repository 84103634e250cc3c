#!/usr/bin/env bash
# Makes sure the servers the tests talk to are up. PostgreSQL and Redis are expected on
# localhost (they are on the CI machine); if one is installed but stopped, start it.
# The S3 endpoint (Ceph's gateway) is started and stopped by the tests themselves.
set -euo pipefail

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    echo "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
fi

# Debian packages the tests need, installed when missing (as root, with one apt-get update):
# - headless Chromium for the reviewer-page tests (browser drivers' own downloads cannot work
#   here; Playwright drives Debian's build through its executable path);
# - Ceph's monitor, manager, OSD and RADOS Gateway: the tests' S3 endpoint, a throwaway
#   single-node cluster that the test session starts and stops itself (infra/ceph-s3.sh);
# - nginx (the small nginx-light build) for `make test-topology`, which runs it in front of
#   two API nodes with infra/nginx.conf (the test starts its own; the system one stays off);
# - Pango, HarfBuzz's subsetter and a font for WeasyPrint, which makes the PDF custody report.
browser=()
command -v chromium >/dev/null 2>&1 || browser=(chromium)
if ! command -v nginx >/dev/null 2>&1 && ! [ -x /usr/sbin/nginx ]; then browser+=(nginx-light); fi
# WeasyPrint (the PDF custody report) loads Pango and HarfBuzz's subsetter; DejaVu is its font.
for lib in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core; do
  dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "ok installed" || browser+=("$lib")
done
ceph=()
for tool in ceph-mon:ceph-mon ceph-osd:ceph-osd ceph-mgr:ceph-mgr radosgw:radosgw radosgw-admin:radosgw \
    ceph:ceph-common ceph-authtool:ceph-common monmaptool:ceph-common; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || ceph+=("${tool#*:}")
done
if [ ${#ceph[@]} -gt 0 ]; then mapfile -t ceph < <(printf '%s\n' "${ceph[@]}" | sort -u); fi
if [ $((${#browser[@]} + ${#ceph[@]})) -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${browser[*]} ${ceph[*]}"
    apt-get update -qq
    if [ ${#browser[@]} -gt 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${browser[@]}" >/dev/null
    fi
    # Without Ceph's recommended extras (the manager's dashboard and its Python stack).
    if [ ${#ceph[@]} -gt 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${ceph[@]}" >/dev/null
    fi
  else
    echo "missing Debian packages: ${browser[*]} ${ceph[*]} (browser tests fail; S3 tests are skipped, or fail under CI)" >&2
  fi
fi
