"""The settings table in docs/service.md is the Settings model's, field for field."""

from __future__ import annotations

import pytest

from kit.settings_doc import SETTINGS_DOC, render_doc


def test_settings_table_matches_the_settings_model() -> None:
    text = SETTINGS_DOC.read_text()
    assert render_doc(text) == text, "the settings table is stale: run `python -m kit.settings_doc`"


def test_missing_markers_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="settings-table markers"):
        render_doc("# no table here\n")
