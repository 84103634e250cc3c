"""nginx from infra/nginx.conf (the production file), with the test's ports put in.

Only what names this machine changes: the upstream servers, the listening address, and the
paths nginx writes to (pid, logs, temporary files, all under the test's prefix). Everything
that shapes requests (buffering, timeouts, body size, retries) is the production file's."""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import requests

from tests.support.processes import Service

PRODUCTION_CONF = Path(__file__).resolve().parents[2] / "infra" / "nginx.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def render(template: str, upstreams: list[str], port: int, prefix: Path) -> str:
    """The production configuration for this machine (see the module's docstring)."""
    servers = re.findall(r"^\s*server\s+api-\d+:\d+([^;]*);", template, flags=re.M)
    if not servers:
        raise ValueError("infra/nginx.conf names no `server api-N:PORT` upstream lines")
    options = servers[0]  # every node gets the options the production file gives its first
    lines = "".join(f"        server {address}{options};\n" for address in upstreams)
    text, count = re.subn(r"(?:^\s*server\s+api-\d+:\d+[^;]*;\n)+", lines, template, count=1, flags=re.M)
    assert count == 1
    text, count = re.subn(r"^(\s*)listen\s+\d+;", rf"\1listen 127.0.0.1:{port};", text, count=1, flags=re.M)
    if count != 1:
        raise ValueError("infra/nginx.conf has no `listen PORT;` line")
    paths = (
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log info;\n"
    )
    http_paths = (
        f"    access_log {prefix}/access.log;\n"
        f"    client_body_temp_path {prefix}/tmp/body;\n"
        f"    proxy_temp_path {prefix}/tmp/proxy;\n"
        f"    fastcgi_temp_path {prefix}/tmp/fastcgi;\n"
        f"    uwsgi_temp_path {prefix}/tmp/uwsgi;\n"
        f"    scgi_temp_path {prefix}/tmp/scgi;\n"
    )
    text = re.sub(r"^http\s*\{\n", lambda m: m.group(0) + http_paths, text, count=1, flags=re.M)
    return paths + text


def with_vault(text: str, vault: Path) -> str:
    """The configuration with the internal location's alias on ``vault`` (a test's local
    vault, for EVIDENCE_ACCEL_REDIRECT). The vault's files are the service account's alone
    (0600/0400): run as root, nginx would give its workers to "nobody", so they run as root."""
    text, count = re.subn(r"^(\s*alias\s+)/var/lib/evidence/vault/;", lambda m: f"{m.group(1)}{vault}/;", text,
                          count=1, flags=re.M)
    if count != 1:
        raise ValueError("infra/nginx.conf has no internal location aliased to /var/lib/evidence/vault/")
    return ("user root;\n" if os.geteuid() == 0 else "") + text


def nginx_service(binary: str, upstreams: list[str], port: int, prefix: Path, log: Path,
                  vault: Path | None = None) -> Service:
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    text = render(PRODUCTION_CONF.read_text(), upstreams, port, prefix)
    conf.write_text(with_vault(text, vault) if vault is not None else text)
    # In the foreground, so it is one of the test's own processes; SIGQUIT is its graceful stop.
    return Service("nginx", [binary, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"], log,
                   stop_signal=signal.SIGQUIT)


def answers(url: str) -> bool:
    try:
        requests.get(f"{url}/healthz", timeout=2)
    except requests.RequestException:
        return False
    return True
