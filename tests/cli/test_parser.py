"""`kit.cli.known_command`: what documentation checks (runbooks, README and docs/, workflows) rely on."""

from __future__ import annotations

import pytest

from kit.cli import known_command, parse_error


@pytest.mark.parametrize(
    "line",
    [
        "kit status --env prod",
        "kit status --env <env> --json --context prod-eu",
        "kit smoke --url https://api.example.com",
        "kit smoke --url $PREVIEW_URL --json",
        "kit rollback --env prod --yes",
        "kit dead-letters list --env prod",
        "kit dead-letters replay --env prod --event-id <uuid> --event-id <uuid>",
        "kit dead-letters replay --all --database-url sqlite+aiosqlite:///app.db",
        "kit dead-letters discard --env prod --event-id <uuid> --reason <ticket>",
        "kit preview up --pr <n> --image ${IMAGE}",
        "kit preview down --pr $PR --yes",
        "kit preview list",
        "kit preview sweep --dry-run",
        "kit db-shell --env staging",
        "kit db-shell --env staging --print",
    ],
)
def test_documented_commands_parse(line: str) -> None:
    assert known_command(line.split())


@pytest.mark.parametrize(
    "line",
    [
        "kit",
        "kit stauts --env prod",  # typo
        "kit status",  # --env is required
        "kit rollback --env prod --force",  # no such flag
        "kit dead-letters list --all",  # --all belongs to replay
        "kit dead-letters replay --env prod",  # which events?
        "kit dead-letters replay --all --event-id <uuid>",  # one or the other
        "kit dead-letters discard --event-id <uuid>",  # --reason is required
        "kit preview up",  # --pr is required
        "kit preview up --pr abc",
        "kit preview up --pr 0",
        "kit preview up --pr 1",  # --image is required
        "kit smoke",  # --url or --env
        "kit smoke --url https://a --env prod",  # not both
        "kit db-shell --env",
    ],
)
def test_mistakes_do_not_parse(line: str) -> None:
    assert not known_command(line.split())


def test_a_leading_kit_is_optional() -> None:
    assert (
        known_command(["status", "--env", "prod"])
        == known_command(["kit", "status", "--env", "prod"])
        is True
    )


def test_parse_error_says_what_argparse_says(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_error(["rollback", "--env", "prod", "--force"]) == "kit: unrecognized arguments: --force"
    assert parse_error(["db-shell"]) == "kit db-shell: the following arguments are required: --env"
    assert parse_error(["status", "--help"]) is None  # a real command line; its text is swallowed
    assert capsys.readouterr().out == ""
