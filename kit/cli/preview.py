"""`kit preview up|down|list|sweep`: the pull-request preview stacks `pr-<n>`, through the pulumi CLI.

The CLI rather than the Automation API: the Automation API drives the same `pulumi` binary, so
it would add the SDK to the kit's dependencies without removing the need for the CLI.

    up     stack pr-<n> (created from the `pr` template stack's config when new: Pulumi.pr.yaml),
           config kit:pr, kit:image, kit:createdAt, kit:expiresAt (unix seconds; the program puts
           them on the preview's objects as the preview.kit/* labels), `pulumi up`, print the URL.
    down   `pulumi destroy` and `pulumi stack rm`.
    list   every pr-<n> stack with its age and expiry (from its kit:* config).
    sweep  `down` for every preview whose kit:expiresAt has passed (the scheduled CI job).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kit.cli import output
from kit.cli.errors import FAILED, NOT_FOUND, OK, SETUP, KitError

STACK = re.compile(r"(?:.*/)?pr-(\d+)$")
TEMPLATE_STACK = "pr"
CONFIG_PR, CONFIG_IMAGE = "kit:pr", "kit:image"
CONFIG_CREATED, CONFIG_EXPIRES = "kit:createdAt", "kit:expiresAt"
URL_OUTPUTS = ("serviceUrl", "url", "previewUrl")
INSTALL_HINT = "install it: curl -fsSL https://get.pulumi.com | sh (https://www.pulumi.com/docs/install/)"


def stack_name(pr: int) -> str:
    return f"pr-{pr}"


@dataclass
class Preview:
    stack: str
    pr: int
    created_at: int | None
    expires_at: int | None
    last_update: str | None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _stderr_fd() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a replaced stderr (captured output)
        return None


class Pulumi:
    """The pulumi binary, non-interactive, in the folder of Pulumi.yaml."""

    def __init__(self, cwd: Path) -> None:
        binary = shutil.which("pulumi")
        if binary is None:
            raise KitError(f"the pulumi CLI is not installed: {INSTALL_HINT}", SETUP)
        if not (cwd / "Pulumi.yaml").is_file():
            raise KitError(f"no Pulumi.yaml in {cwd}: pass --cwd <folder of the Pulumi project>", SETUP)
        self.binary, self.cwd = binary, cwd

    def __call__(
        self, *args: str, capture: bool = True, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, *args, "--non-interactive", "--cwd", str(self.cwd)]
        # Long commands (up, destroy) stream pulumi's own progress to stderr: stdout stays kit's
        # (a table, or the --json document).
        stream = None if capture else _stderr_fd()
        if stream is None:
            result = subprocess.run(argv, text=True, check=False, capture_output=True)  # noqa: S603
            if not capture:
                sys.stderr.write(result.stdout + result.stderr)
        else:
            result = subprocess.run(argv, text=True, check=False, stdout=stream)  # noqa: S603
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout or "").strip().splitlines() if capture else []
            raise KitError(
                f"pulumi {' '.join(args[:2])} failed (exit {result.returncode}): "
                f"{detail[-1] if detail else 'see above'}",
                FAILED,
            )
        return result

    def json(self, *args: str) -> Any:
        out = self(*args, "--json").stdout
        try:
            return json.loads(out or "null")
        except ValueError:
            raise KitError(
                f"pulumi {' '.join(args)} did not print JSON: {out.strip()[:120]}", FAILED
            ) from None


def _int(config: dict[str, Any], key: str) -> int | None:
    value = config.get(key, {})
    raw = value.get("value") if isinstance(value, dict) else value
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def previews(pulumi: Pulumi) -> list[Preview]:
    found = []
    for stack in pulumi.json("stack", "ls") or []:
        match = STACK.match(str(stack.get("name", "")))
        if not match:
            continue
        name = stack["name"]
        config = pulumi.json("config", "--stack", name) or {}
        found.append(
            Preview(
                stack=name,
                pr=int(match.group(1)),
                created_at=_int(config, CONFIG_CREATED),
                expires_at=_int(config, CONFIG_EXPIRES),
                last_update=stack.get("lastUpdate"),
            )
        )
    return sorted(found, key=lambda p: p.pr)


def _exists(pulumi: Pulumi, stack: str) -> bool:
    return any(
        STACK.match(str(s.get("name", ""))) and str(s["name"]).split("/")[-1] == stack
        for s in pulumi.json("stack", "ls") or []
    )


def up(pulumi: Pulumi, pr: int, image: str | None, ttl: int) -> dict[str, Any]:
    stack = stack_name(pr)
    now = int(time.time())
    if not _exists(pulumi, stack):
        pulumi("stack", "init", stack, "--copy-config-from", TEMPLATE_STACK)
        pulumi("config", "set", "--stack", stack, CONFIG_CREATED, str(now))
    pulumi("config", "set", "--stack", stack, CONFIG_PR, str(pr))
    pulumi("config", "set", "--stack", stack, CONFIG_EXPIRES, str(now + ttl))
    if image:
        pulumi("config", "set", "--stack", stack, CONFIG_IMAGE, image)
    pulumi("up", "--stack", stack, "--yes", "--skip-preview", capture=False)
    outputs = pulumi.json("stack", "output", "--stack", stack) or {}
    url = next((str(outputs[k]) for k in URL_OUTPUTS if outputs.get(k)), None)
    return {"stack": stack, "pr": pr, "url": url, "expires_at": now + ttl, "image": image}


def down(pulumi: Pulumi, stack: str) -> None:
    pulumi("destroy", "--stack", stack, "--yes", "--skip-preview", capture=False)
    pulumi("stack", "rm", stack, "--yes")


def run(args: argparse.Namespace) -> int:
    from kit.cli.status import human_duration

    cwd = Path(args.cwd) if args.cwd else Path(__file__).resolve().parents[2]
    pulumi = Pulumi(cwd)
    now = time.time()
    if args.action == "up":
        result = up(pulumi, args.pr, args.image, args.ttl)
        if args.json:
            output.emit_json(result)
        else:
            output.line(f"preview {result['stack']}: {result['url'] or '(the stack exports no URL)'}")
            output.line(f"expires in {human_duration(args.ttl)} (kit preview up again to extend)")
        return OK
    if args.action == "down":
        stack = stack_name(args.pr)
        if not _exists(pulumi, stack):
            raise KitError(f"no preview stack {stack}", NOT_FOUND)
        output.confirm(f"destroy preview {stack}?", args.yes)
        down(pulumi, stack)
        if args.json:
            output.emit_json({"destroyed": [stack]})
        else:
            output.line(f"preview {stack}: destroyed and removed")
        return OK
    found = previews(pulumi)
    if args.action == "list":
        if args.json:
            output.emit_json([{**asdict(p), "expired": p.expired(now)} for p in found])
        else:
            output.table(
                "previews",
                ["stack", "pr", "age", "expires", "last update"],
                [
                    [
                        p.stack,
                        p.pr,
                        human_duration(now - p.created_at) if p.created_at else "?",
                        "no expiry set"
                        if p.expires_at is None
                        else ("EXPIRED " + human_duration(now - p.expires_at) + " ago")
                        if p.expired(now)
                        else "in " + human_duration(p.expires_at - now),
                        p.last_update or "-",
                    ]
                    for p in found
                ],
            )
        return OK
    expired = [p for p in found if p.expired(now)]
    destroyed, failed = [], []
    for preview in expired:
        if args.dry_run:
            continue
        try:
            down(pulumi, preview.stack)
            destroyed.append(preview.stack)
        except KitError as error:
            failed.append(preview.stack)
            output.note(f"error: {error.message}")
    if args.json:
        output.emit_json(
            {
                "expired": [p.stack for p in expired],
                "destroyed": destroyed,
                "failed": failed,
                "dry_run": args.dry_run,
            }
        )
    else:
        verb = "would destroy" if args.dry_run else "destroyed"
        output.line(
            f"{len(expired)} expired preview(s); {verb}: {', '.join(p.stack for p in expired) or 'none'}"
        )
    return FAILED if failed else OK
