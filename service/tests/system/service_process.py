"""The service in its own process, with the test suite's JWT secret (testsupport.app_process)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from service.tests.builders import TEST_SECRET
from testsupport.app_process import ServiceProcess
from testsupport.app_process import service_process as _service_process

__all__ = ["ServiceProcess", "service_process"]


@contextlib.contextmanager
def service_process(database_url: str, log_dir: Path, **env: str) -> Iterator[ServiceProcess]:
    with _service_process(database_url, log_dir, jwt_secret=TEST_SECRET, **env) as server:
        yield server
