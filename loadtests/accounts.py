"""The seeded load-test accounts: one naming rule shared by the seeder and the locustfile."""

from __future__ import annotations

import os

EMAIL_DOMAIN = "loadtest.example.com"
# Not a secret: it guards throwaway load-test accounts in throwaway databases. Deployed
# environments seeded for a load test set LOADTEST_PASSWORD to their own value.
DEFAULT_PASSWORD = "load-test-Passw0rd!"  # noqa: S105


def password() -> str:
    return os.environ.get("LOADTEST_PASSWORD", DEFAULT_PASSWORD)


def owner_email(index: int) -> str:
    return f"owner-{index:05d}@{EMAIL_DOMAIN}"


def manager_email(index: int) -> str:
    return f"manager-{index:03d}@{EMAIL_DOMAIN}"
