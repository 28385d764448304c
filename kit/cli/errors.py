"""Exit codes and the one error type every `kit` command raises for an expected failure.

Scripts and CI rely on these numbers (documented in docs/operations.md, "Exit codes"):

    0  ok: healthy, journey passed, rollout finished, command done
    1  the thing checked is not ok: unhealthy, smoke journey failed, rollout failed or timed out
    2  usage: bad arguments or input (argparse uses 2 too)
    3  local set-up: no kubeconfig, unknown context, missing tool (pulumi, kubectl), missing dependency
    4  unreachable: Kubernetes API server, Prometheus, Alertmanager, the service, the database
    5  denied: RBAC forbids the call (403) or the credentials are rejected (401)
    6  not found: the namespace or object is not there (often the wrong --context)
    7  aborted: the confirmation prompt was declined
"""

from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2
SETUP = 3
UNREACHABLE = 4
DENIED = 5
NOT_FOUND = 6
ABORTED = 7


class KitError(Exception):
    """An expected failure: printed as one line (`error: ...`), exit with `code`."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
