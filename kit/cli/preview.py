"""`kit preview up|down|list|sweep`: kit's front end (exit codes, --json, tables, confirmation)
over infra/previews.py, which does the work with the pulumi CLI (also behind `make preview*`).

infra is imported here, when the command runs: the service image ships kit/cli without infra/
(`kit preview` then says it needs the kit's environment, exit 3).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kit.cli import output
from kit.cli.errors import FAILED, NOT_FOUND, OK, SETUP, USAGE, KitError

if TYPE_CHECKING:
    from infra.previews import Preview


def _expiry(preview: Preview, now: float) -> str:
    from kit.cli.status import human_duration

    if preview.expires_at is None:
        return "never deployed"
    if preview.expired(now):
        return f"EXPIRED {human_duration(now - preview.expires_at)} ago"
    return f"in {human_duration(preview.expires_at - now)}"


def _age(preview: Preview, now: float) -> str:
    from kit.cli.status import human_duration

    return human_duration(now - preview.created_at) if preview.created_at is not None else "-"


def _at(moment: int | None) -> str:
    if moment is None:
        return ""
    return f" at {datetime.fromtimestamp(moment, UTC):%Y-%m-%d %H:%M} UTC"


def run(args: argparse.Namespace) -> int:
    from infra import previews

    try:
        return _run(args)
    except previews.PulumiMissing as error:
        raise KitError(str(error), SETUP) from None
    except previews.BadInput as error:
        raise KitError(str(error), USAGE) from None
    except previews.NoSuchPreview as error:
        raise KitError(str(error), NOT_FOUND) from None
    except previews.PreviewError as error:
        raise KitError(str(error), FAILED) from None


def _run(args: argparse.Namespace) -> int:
    from infra import previews

    cli = previews.PulumiCli(Path(args.cwd).resolve()) if args.cwd else previews.PulumiCli()
    now = time.time()
    if args.action == "up":
        opened = previews.open_preview(cli, args.pr, args.image)
        if args.json:
            output.emit_json(asdict(opened))
        else:
            output.line(f"preview {opened.stack}: {opened.url or '(the stack exports no serviceUrl)'}")
            output.line(
                f"expires {_expiry(opened, time.time())}{_at(opened.expires_at)} (up again to extend)"
            )
        return OK
    if args.action == "down":
        stack = previews.require_preview(cli, args.pr)
        output.confirm(f"destroy preview {stack} and remove its stack?", args.yes)
        previews.close_preview(cli, args.pr)
        if args.json:
            output.emit_json({"destroyed": [stack]})
        else:
            output.line(f"preview {stack}: destroyed and removed")
        return OK
    if args.action == "list":
        found = previews.list_previews(cli)
        if args.json:
            output.emit_json([{**asdict(p), "expired": p.expired(now)} for p in found])
        else:
            output.table(
                "previews",
                ["stack", "pr", "age", "expires", "url"],
                [[p.stack, p.pull_request, _age(p, now), _expiry(p, now), p.url or "-"] for p in found],
            )
        return OK
    swept = previews.sweep(cli, now, args.dry_run)
    if args.json:
        output.emit_json({**asdict(swept), "dry_run": args.dry_run})
    else:
        verb = "would destroy" if args.dry_run else "destroyed"
        done = swept.expired if args.dry_run else swept.destroyed
        output.line(f"{len(swept.expired)} expired preview(s); {verb}: {', '.join(done) or 'none'}")
        if swept.failed:
            output.line(f"failed: {', '.join(swept.failed)}")
        if swept.unknown:
            output.line(f"never deployed (no expiresAt, left alone): {', '.join(swept.unknown)}")
    return FAILED if swept.failed else OK
