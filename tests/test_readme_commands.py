"""Every `make` target and every `kit` command the README and the pages under docs/ name exists.

Commands come from shell lines of fenced blocks (`$ ` prompts stripped, leading `VAR=value`
assignments skipped) and from inline code spans that start with `make` or `kit`. They are
checked by the runbook-command checker's own pieces: make targets against the Makefile, kit
command lines against the CLI's parser (a span in prose may leave out required options, but
its subcommands and flags must exist). The workflows are covered by
tests/cli/test_delivery_workflow.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kit import runbook_commands as rc
from kit.paths import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
PROGRAMS = {"make", "kit"}
PROMPT = re.compile(r"^\s*\$\s+")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")
FACTS = rc.Repo(objects=[], make_targets=rc.make_targets(), recorded_series=set(), service_metrics=set())


def _program_of(line: str) -> str | None:
    words = [w for w in line.split() if not ASSIGNMENT.match(w)]
    return words[0] if words and words[0] in PROGRAMS else None


def _without_assignments(command: rc.Command) -> rc.Command:
    argv = list(command.argv)
    while argv and ASSIGNMENT.match(argv[0]):
        argv.pop(0)
    return rc.Command(command.path, " ".join(argv), tuple(argv), command.mention)


def _alternatives(span: str) -> list[str]:
    """`kit dead-letters list\\|replay` (a table cell) -> one command line per alternative."""
    words = span.split()
    for index, word in enumerate(words):
        if "\\|" in word:
            return [" ".join([*words[:index], choice, *words[index + 1 :]]) for choice in word.split("\\|")]
    return [span]


def readme_commands(path: Path) -> list[rc.Command]:
    """The `make ...` and `kit ...` commands a Markdown file names, in blocks and in prose."""
    text = path.read_text()
    commands: list[rc.Command] = []
    for language, body in rc.FENCE.findall(text):
        if language not in rc.SHELL_LANGUAGES | {""}:
            continue
        lines = body.splitlines()
        if language == "console" or any(PROMPT.match(line) for line in lines):
            lines = [PROMPT.sub("", line) for line in lines if PROMPT.match(line)]
        # Only lines that run make or kit: unlabelled blocks also hold diagrams and output.
        script = "\n".join(line for line in lines if _program_of(line))
        commands += rc.split_commands(path, script)
    for span in rc.INLINE.findall(rc.FENCE.sub("", text)):
        if _program_of(span) and span.split()[1:] != ["..."]:  # `kit ...`: the CLI in general
            for alternative in _alternatives(span):
                commands += rc.split_commands(path, alternative, mention=True)
    commands = [_without_assignments(c) for c in commands]
    return [c for c in commands if c.argv and c.argv[0] in PROGRAMS]


def problems(path: Path) -> list[str]:
    found = []
    for command in readme_commands(path):
        checker = rc.check_make if command.argv[0] == "make" else rc.check_kit
        found += [f"`{command.text}`: {message}" for message in checker(command, FACTS)]
    return found


def _named(path: Path) -> set[str]:
    return {c.argv[1] for c in readme_commands(path) if len(c.argv) > 1}


def test_the_tour_names_the_commands_a_newcomer_runs() -> None:
    # The extraction cannot silently find nothing: the tour's own commands are among those read.
    named = _named(README)
    assert {"run", "test", "lint", "security", "chaos", "bench", "restore-drill-large", "gate-sim"} <= named
    assert {"preview", "preview-destroy", "loadtest", "status", "smoke", "rollback"} <= named


def test_the_reference_pages_are_read() -> None:
    assert {p.name for p in DOCS} >= {"service.md", "operations.md", "loadtests.md", "pulumi.md"}
    named = set().union(*map(_named, DOCS))
    assert {"dead-letters", "db-shell", "restore-drill", "loadtest-compare"} <= named


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_make_target_and_kit_command_named_exists(path: Path) -> None:
    assert problems(path) == []


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("```console\n$ make tset     # the tests\n```", "`make tset`: no make target 'tset'"),
        ("Run `make loadtest ENV=ci SHAPE=stepp` or `make lodtest`.", "no make target 'lodtest'"),
        ("```bash\nWEBHOOK_URL=x make wroker\n```", "no make target 'wroker'"),
        ("```sh\nkit stauts --env prod\n```", "invalid choice: 'stauts'"),
        ("```\nkit rollback --env prod --force\n```", "unrecognized arguments: --force"),
        ("Then `kit smoke --ulr https://api.example.com`.", "kit smoke has no flag --ulr"),
        ("Then `kit dead-letters relpay --all`.", "invalid choice: 'relpay'"),
        ("| `kit preview up\\|dwon --pr <n>` | previews |", "invalid choice: 'dwon'"),
    ],
)
def test_a_wrong_command_is_flagged(tmp_path: Path, markdown: str, expected: str) -> None:
    path = tmp_path / "README.md"
    path.write_text(f"# Title\n\n{markdown}\n")
    found = problems(path)
    assert len(found) == 1 and expected in found[0], found


def test_diagrams_and_output_in_unlabelled_blocks_are_not_commands(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text(
        "```\npull request:  lint -> kit preview up -> kit smoke\n```\n\n"
        "```console\n$ make test   # it's all\nmake: *** [Makefile:1: test] Error 1\n$ make run\n```\n"
        "`kit ...` names the CLI; `kit preview up\\|down --pr <n>` two of its commands.\n"
    )
    assert [c.text for c in readme_commands(path)] == [
        "make test",
        "make run",
        "kit preview up --pr __PH_n__",
        "kit preview down --pr __PH_n__",
    ]
