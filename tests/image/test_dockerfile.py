"""service/Dockerfile and .dockerignore: hadolint clean and the image contract holds.

The real build and run is `make image-test` (podman, minutes); these are the fast checks
that `make test` runs, each paired with a broken copy that must be caught.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.dockerfile_check import (
    DOCKERFILE,
    DOCKERIGNORE,
    contract_problems,
    dockerignore_problems,
    hadolint_problems,
)

DOCKERFILE_TEXT = DOCKERFILE.read_text()


def broken(old: str, new: str) -> str:
    """The real Dockerfile with one edit; fails loudly if the edited text moved."""
    assert old in DOCKERFILE_TEXT, f"the Dockerfile no longer contains {old!r}: update this test"
    return DOCKERFILE_TEXT.replace(old, new)


def test_hadolint_finds_no_warning_or_error() -> None:
    assert hadolint_problems(DOCKERFILE) == []


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nUSER root\n")

    codes = {problem.split()[2] for problem in hadolint_problems(bad)}

    assert {"DL3007", "DL3008", "DL3002"} <= codes  # latest tag, unpinned apt, root user


def test_dockerfile_keeps_the_image_contract() -> None:
    assert contract_problems(DOCKERFILE_TEXT) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("USER 10001:10001", "USER root", "final stage USER is 'root'"),
        ("USER 10001:10001", "USER 0:0", "final stage USER is '0:0'"),
        ("USER 10001:10001", "USER app", "must be a numeric non-root uid"),
        ("HEALTHCHECK --interval", "# HEALTHCHECK --interval", "final stage has no HEALTHCHECK"),
        ("/health/live", "/health/ready", "does not probe /health/live"),
        ("ARG BASE_IMAGE=python:3.11-slim", "ARG BASE_IMAGE=python:latest", "default base must be"),
        ("FROM ${BASE_IMAGE} AS runtime", "FROM python:latest AS runtime", "floating `latest` tag"),
        ("FROM ${BASE_IMAGE} AS runtime", "FROM debian:12 AS runtime", "does not use the BASE_IMAGE"),
        ("COPY --from=builder /opt/venv", "COPY /opt/venv", "takes only the built /opt/venv"),
        ("TMPDIR=/tmp", "TMPDIR=/var/tmp", "does not set TMPDIR=/tmp"),
        ('VOLUME ["/tmp"]', "", "does not declare `VOLUME"),
        ('CMD ["python", "-m", "app.main"]', "CMD python -m app.main", "exec-form CMD"),
    ],
)
def test_a_broken_dockerfile_is_reported(old: str, new: str, expected: str) -> None:
    problems = contract_problems(broken(old, new))

    assert any(expected in problem for problem in problems), problems


def test_a_builder_without_the_lock_file_is_reported() -> None:
    unlocked = DOCKERFILE_TEXT.replace("sync --locked", "sync")

    assert any("uv sync --locked" in problem for problem in contract_problems(unlocked))


def test_a_single_stage_dockerfile_is_reported() -> None:
    single = "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nUSER 10001\n"

    assert contract_problems(single) == ["1 stage(s): the image must be multi-stage (builder + slim runtime)"]


def test_dockerignore_admits_exactly_what_the_dockerfile_copies() -> None:
    assert dockerignore_problems(DOCKERFILE_TEXT, DOCKERIGNORE.read_text()) == []


def test_dockerignore_problems_name_the_path() -> None:
    without_lock = DOCKERIGNORE.read_text().replace("!uv.lock\n", "")
    with_tests = DOCKERIGNORE.read_text() + "!tests\n"
    deny_list = ".venv\n.git\n"

    assert dockerignore_problems(DOCKERFILE_TEXT, without_lock) == [
        "`uv.lock` is COPYed but not re-included (`!uv.lock`) in .dockerignore"
    ]
    assert dockerignore_problems(DOCKERFILE_TEXT, with_tests) == [
        "`!tests` in .dockerignore lets in a path the Dockerfile never COPYs"
    ]
    assert "must start with `*`" in dockerignore_problems(DOCKERFILE_TEXT, deny_list)[0]
