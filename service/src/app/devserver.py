"""`make run`: migrate the local database, make sure an admin exists, serve on 127.0.0.1:8000.

The admin comes from BOOTSTRAP_ADMIN_EMAIL / BOOTSTRAP_ADMIN_PASSWORD, or is
created with a generated password that is printed once (never a fixed default).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys

from app.composition import build_container
from app.main import run
from app.migrate import upgrade
from app.settings import Settings, get_settings

DEFAULT_ADMIN_EMAIL = "admin@example.com"


async def ensure_admin(settings: Settings) -> tuple[str, str] | None:
    """Create the first admin if there is none; returns (email, password) when created."""
    email = settings.bootstrap_admin_email or DEFAULT_ADMIN_EMAIL
    password = (
        settings.bootstrap_admin_password.get_secret_value()
        if settings.bootstrap_admin_password
        else secrets.token_urlsafe(18)
    )
    container = build_container(settings)
    try:
        created = await container.identity.ensure_bootstrap_admin(email, password)
    finally:
        await container.close()
    return (email, password) if created else None


def main() -> None:
    # Local HTTP: the session cookie cannot be Secure on http://127.0.0.1.
    os.environ.setdefault("COOKIE_SECURE", "false")
    # No secret configured: one random secret for this process (tokens end with it).
    os.environ.setdefault("JWT_SECRET", secrets.token_urlsafe(48))
    settings = get_settings()
    upgrade(settings)
    created = asyncio.run(ensure_admin(settings))
    base = f"http://{settings.host}:{settings.port}"
    print(f"\n  API docs:  {base}/docs")
    if created:
        email, password = created
        shown = "(from BOOTSTRAP_ADMIN_PASSWORD)" if settings.bootstrap_admin_password else password
        print(f"  Admin:     {email} / {shown}   <- shown once, store it now")
    else:
        print("  Admin:     already exists (set BOOTSTRAP_ADMIN_* on a fresh database to choose it)")
    print(
        f"  Log in:    curl -s -X POST {base}/api/v1/auth/login -H 'content-type: application/json' "
        '-d \'{"email": "...", "password": "..."}\'\n',
        flush=True,
    )
    sys.stdout.flush()
    run()


if __name__ == "__main__":
    main()
