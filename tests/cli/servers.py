"""Debian's Pushgateway and Alertmanager on free loopback ports (the harness has Prometheus)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from testsupport.prometheus import serve_exposition
from testsupport.servers import free_port, stop_process, wait_until


@contextlib.contextmanager
def _daemon(argv: list[str], ready_url: str, what: str, workdir: Path) -> Iterator[None]:
    log = (workdir / f"{what}.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        wait_until(lambda: urllib.request.urlopen(ready_url, timeout=1).status == 200, 30, what)
        yield
    finally:
        stop_process(process, grace=15)
        log.close()


@contextlib.contextmanager
def pushgateway() -> Iterator[str]:
    """prometheus-pushgateway (Debian package) without persistence; yields its base URL."""
    workdir = Path(tempfile.mkdtemp(prefix="pushgateway-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    binary = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
    try:
        # Debian's build persists to /var/lib/prometheus by default: nothing may outlive the test.
        argv = [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
        with _daemon(argv, f"{url}/-/ready", "pushgateway", workdir):
            yield url
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def alertmanager() -> Iterator[str]:
    """prometheus-alertmanager with one receiver that sends nowhere; yields its base URL."""
    workdir = Path(tempfile.mkdtemp(prefix="alertmanager-"))
    (workdir / "alertmanager.yml").write_text("route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    binary = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
    argv = [
        binary,
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    try:
        with _daemon(argv, f"{url}/-/ready", "alertmanager", workdir):
            yield url
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def exposition(text: str) -> Iterator[str]:
    """A static /metrics page on loopback (crafted series); yields host:port."""
    with serve_exposition(lambda _path: text) as address:
        yield address
