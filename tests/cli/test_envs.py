"""--env resolution: a missing or invalid config/environments.yaml is a one-line setup error."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit import environments
from kit.cli import envs
from kit.cli.errors import SETUP, KitError


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "No such file or directory"),
        (
            "image: {repository: x}\nenvironments: {dev: {replicaz: 2}}\n",
            "environments.dev.replicaz: Extra inputs",
        ),
    ],
)
def test_a_missing_or_invalid_environments_file_is_a_setup_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, expected: str
) -> None:
    path = tmp_path / "environments.yaml"
    if content is not None:
        path.write_text(content)
    real_load = environments.load
    monkeypatch.setattr(environments, "load", lambda: real_load(path))
    with pytest.raises(KitError) as caught:
        envs.resolve("dev")
    assert caught.value.code == SETUP
    assert str(caught.value).startswith("--env needs a valid config/environments.yaml")
    assert expected in str(caught.value)
