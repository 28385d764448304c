"""The README's settings table is the Settings model's, field for field."""

from __future__ import annotations

import pytest

from kit.settings_doc import README, render_readme


def test_readme_settings_table_matches_the_settings_model() -> None:
    text = README.read_text()
    assert render_readme(text) == text, "the settings table is stale: run `python -m kit.settings_doc`"


def test_missing_markers_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="settings-table markers"):
        render_readme("# no table here\n")
