"""`kit`: the operator's command line for the reference service.

    kit status --env prod                    rollout, restarts, HPA, PDB, health, alerts, burn rates
    kit smoke --url https://api.example.com  the post-deploy journey (also the synthetic probe)
    kit rollback --env prod                  back to the previous release, waits for the rollout
    kit dead-letters list|replay|discard     the outbox's dead-lettered events
    kit preview up|down|list|sweep           pull-request preview stacks (infra/previews.py, Pulumi CLI)
    kit db-shell --env staging               psql in a debug pod that passes restricted PSS

Every command takes --json (machine output) and --context/--kubeconfig (which cluster); the
exit codes are in kit/cli/errors.py. The parser is built without importing any command's
dependencies (kubernetes, rich, SQLAlchemy): `known_command` checks a command line cheaply, and
the service image runs `kit smoke` with only the service's own dependencies.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from kit.cli.errors import SETUP, USAGE, KitError

PROG = "kit"


def _pr_number(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"pull request number must be a positive integer, got {value!r}")
    return int(value)


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value!r}")
    return number


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `known_command` can use it."""

    def error(self, message: str) -> Any:
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _common() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("--context", help="kube context (default: the kubeconfig's current context)")
    common.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    return common


def _env_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--env",
        required=required,
        metavar="ENV",
        help="environment in config/environments.yaml (dev, staging, prod, ...)",
    )
    parser.add_argument("--namespace", help="override the environment's namespace")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(prog=PROG, description="The operator's command line for the reference service.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    def command(name: str, target: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=[common], **kwargs)
        sub.set_defaults(target=target)
        return sub

    status = command(
        "status", "kit.cli.status:run", "rollout, restarts, HPA, PDB, health, alerts, burn rates"
    )
    _env_options(status, required=True)
    status.add_argument("--prometheus-url", help="Prometheus base URL (default: $KIT_PROMETHEUS_URL)")
    status.add_argument("--alertmanager-url", help="Alertmanager base URL (default: $KIT_ALERTMANAGER_URL)")
    status.add_argument(
        "--url", help="service base URL for /health/ready (default: through the API server's service proxy)"
    )
    status.add_argument("--timeout", type=_positive, default=10.0, help="seconds per call (default 10)")

    smoke = command("smoke", "kit.cli.smoke:run", "the post-deploy journey; optionally push its metrics")
    target = smoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="service base URL, e.g. https://api.example.com")
    target.add_argument("--env", metavar="ENV", help="use https://<host of ENV>")
    smoke.add_argument("--host-header", help="Host header to send (in-cluster probe through the Service)")
    smoke.add_argument("--email", help="smoke account (default: $KIT_SMOKE_EMAIL)")
    smoke.add_argument("--password", help="its password (default: $KIT_SMOKE_PASSWORD)")
    smoke.add_argument("--pushgateway", help="push synthetic_* metrics here (default: $KIT_PUSHGATEWAY_URL)")
    smoke.add_argument("--namespace", help="grouping label of the pushed metrics (default: $KIT_NAMESPACE)")
    smoke.add_argument(
        "--environment", help="grouping label of the pushed metrics (default: $KIT_ENVIRONMENT)"
    )
    smoke.add_argument("--timeout", type=_positive, default=10.0, help="seconds per request (default 10)")

    rollback = command("rollback", "kit.cli.rollback:run", "roll the API and the worker back one release")
    _env_options(rollback, required=True)
    rollback.add_argument("--to-revision", type=int, help="Deployment revision (default: the previous one)")
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rollback.add_argument("--timeout", type=_positive, default=600.0, help="seconds to wait (default 600)")

    dead = command("dead-letters", "", "the outbox's dead-lettered events", add_help=True)
    dead_commands = dead.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)

    def dead_action(name: str, help: str) -> argparse.ArgumentParser:
        sub = dead_commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(target="kit.cli.dead_letters:run")
        _env_options(sub, required=False)
        sub.add_argument(
            "--database-url", help="local mode: this database (default: $DATABASE_URL) instead of --env"
        )
        sub.add_argument("--timeout", type=_positive, default=300.0, help="in-cluster Job wait (default 300)")
        return sub

    listing = dead_action("list", "list dead-lettered events, newest last, with their last error")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    replay = dead_action("replay", "put dead-lettered events back in the queue with fresh attempts")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--event-id", dest="event_ids", action="append", metavar="UUID", help="repeatable")
    which.add_argument("--all", action="store_true", help="every dead-lettered event")
    discard = dead_action("discard", "mark dead-lettered events delivered with a note (never sent)")
    discard.add_argument("--event-id", dest="event_ids", action="append", metavar="UUID", required=True)
    discard.add_argument("--reason", required=True, help="kept in last_error, e.g. the ticket")
    discard.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    preview = command("preview", "", "pull-request preview stacks pr-<n> (Pulumi)")
    preview_commands = preview.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )

    def preview_action(name: str, help: str) -> argparse.ArgumentParser:
        sub = preview_commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(target="kit.cli.preview:run")
        sub.add_argument(
            "--cwd", help="the Pulumi project: Pulumi.yaml, k8s/, infra/policy (default: the repository root)"
        )
        return sub

    up = preview_action("up", "create or update the preview of a pull request; prints its URL")
    up.add_argument("--pr", type=_pr_number, required=True, help="pull request number")
    up.add_argument(
        "--image", required=True, help="the pull request's build by digest: <repository>@sha256:<digest>"
    )
    down = preview_action("down", "destroy a pull request's preview and remove its stack")
    down.add_argument("--pr", type=_pr_number, required=True, help="pull request number")
    down.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    preview_action("list", "every preview with its age and expiry")
    sweep = preview_action("sweep", "destroy every preview past its expiry (the scheduled CI job)")
    sweep.add_argument("--dry-run", action="store_true", help="only list what would be destroyed")

    shell = command("db-shell", "kit.cli.db_shell:run", "psql in a short-lived debug pod in the namespace")
    _env_options(shell, required=True)
    shell.add_argument("--write", action="store_true", help="allow writes (default: read-only transactions)")
    shell.add_argument("--print", dest="print_only", action="store_true", help="print the pod manifest only")
    shell.add_argument("--yes", action="store_true", help="with --write: do not ask for confirmation")
    shell.add_argument("--timeout", type=_positive, default=120.0, help="seconds to wait for the pod")
    return parser


_PLACEHOLDER = re.compile(r"^(<[^>]+>|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)$")


def parse_error(argv: Sequence[str]) -> str | None:
    """Why `kit <argv...>` does not parse, as argparse says it; None when it does.

    For documentation checks (runbooks, README and docs/, workflows). Placeholders (`<n>`, `$PR`,
    `${ENV}`) stand for a valid value of their option. A leading "kit" is accepted and dropped;
    `--help` parses (its text is swallowed).
    """
    args = list(argv)
    if args and args[0] == PROG:
        args = args[1:]
    args = [_SAMPLE_FOR.get(args[i - 1], "1") if _PLACEHOLDER.match(a) else a for i, a in enumerate(args)]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(args)
    except _UsageError as error:
        return str(error)
    except SystemExit as exit_:  # --help
        return None if exit_.code in (0, None) else f"{PROG}: exit {exit_.code}"
    return None


def known_command(argv: Sequence[str]) -> bool:
    """Whether `kit <argv...>` parses (see `parse_error`)."""
    return parse_error(argv) is None


# A value each placeholder-taking option accepts (every other option takes "1").
_SAMPLE_FOR = {"--url": "https://example.com", "--image": "registry.example.com/app@sha256:0"}


def _handler(target: str) -> Callable[[argparse.Namespace], int]:
    module, _, name = target.partition(":")
    handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE
    try:
        return _handler(args.target)(args)
    except KitError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return error.code
    except ModuleNotFoundError as error:
        # The service image ships the CLI for `kit smoke` and `kit dead-letters` only.
        print(
            f"error: kit {args.command} needs {error.name!r}, which is not installed here: "
            "run it from the kit's environment (make venv)",
            file=sys.stderr,
        )
        return SETUP
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
