"""Every generator's `--check` passes on the committed tree, and the shared check-or-write
(kit/render.py) lists exactly the stale outputs, writes only those, and dumps YAML one way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kit import render
from kit.paths import ROOT

GENERATORS = ["kit.generate", "kit.k8s_overlays", "kit.settings_doc", "loadtests.k8s"]


@pytest.mark.parametrize("module", GENERATORS)
def test_check_mode_passes_on_the_committed_outputs(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert (result.returncode, result.stderr) == (0, ""), f"{module}: {result.stderr}"


def test_check_lists_the_stale_outputs_and_write_fixes_only_those(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh, edited = tmp_path / "fresh.yaml", tmp_path / "edited.yaml"
    missing = tmp_path / "new" / "missing.yaml"
    outputs = {fresh: "a: 1\n", edited: "b: 2\n", missing: "c: 3\n"}
    fresh.write_text("a: 1\n")
    edited.write_text("b: 3\n")

    assert render.check_or_write(outputs, check=True, remedy="make regenerate") == 1
    assert capsys.readouterr().err.splitlines() == [
        f"stale: {edited} (run `make regenerate`)",
        f"stale: {missing} (run `make regenerate`)",
    ]
    assert edited.read_text() == "b: 3\n" and not missing.exists(), "--check must write nothing"

    os.utime(fresh, ns=(0, 0))  # a rewrite of the unchanged output would move its mtime
    assert render.check_or_write(outputs, check=False, remedy="make regenerate") == 0
    assert fresh.stat().st_mtime_ns == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote {edited}", f"wrote {missing}"]
    assert render.stale_outputs(outputs) == []
    assert render.check_or_write(outputs, check=True, remedy="make regenerate") == 0


def test_yaml_keeps_key_order_and_writes_multi_line_strings_as_blocks() -> None:
    document = {"zeta": 1, "expr": "sum(rate(x[5m]))\n/\nsum(rate(y[5m]))", "alpha": ["one line"]}
    text = render.dump_yaml(document)
    assert text == "zeta: 1\nexpr: |-\n  sum(rate(x[5m]))\n  /\n  sum(rate(y[5m]))\nalpha:\n- one line\n"
    assert yaml.safe_load(text) == document
    assert render.dump_yaml_all([{"a": 1}, {"b": 2}]) == "a: 1\n---\nb: 2\n"
