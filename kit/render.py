"""The generators' shared plumbing: one YAML form, one JSON form, one check-or-write.

Every generator (``kit.generate``, ``kit.k8s_overlays``, ``kit.settings_doc``, ``loadtests.k8s``)
renders its outputs in memory as ``{path: text}`` and hands them to ``check_or_write``: with
``--check`` it lists the stale ones and exits 1 (what CI and the freshness tests run), otherwise
it writes the ones that changed. Generated YAML opens with a comment naming its generator and
source (JSON has no comments; docs/service.md marks its generated block instead).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kit.paths import ROOT


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL, JSON patches, embedded sources) as `|` blocks: readable diffs."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_LiteralDumper.add_representer(str, _str_representer)


def dump_yaml(document: Any, *, width: int = 100) -> str:
    """Block-style YAML in the document's own key order."""
    return yaml.dump(document, Dumper=_LiteralDumper, sort_keys=False, default_flow_style=False, width=width)


def dump_yaml_all(documents: list[Any], *, width: int = 100) -> str:
    """Several documents separated by `---`, each as ``dump_yaml`` writes it."""
    return yaml.dump_all(
        documents, Dumper=_LiteralDumper, sort_keys=False, default_flow_style=False, width=width
    )


def dump_json(document: object) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def shown(path: Path) -> str:
    """A path as messages print it: relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def stale_outputs(outputs: Mapping[Path, str]) -> list[Path]:
    """The outputs whose file is missing or differs from the rendered text, in render order."""
    return [path for path, text in outputs.items() if not path.exists() or path.read_text() != text]


def write_outputs(outputs: Mapping[Path, str], *, only_changed: bool = True) -> list[Path]:
    """Write the outputs (by default only the stale ones); returns the paths written."""
    written = stale_outputs(outputs) if only_changed else list(outputs)
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(outputs[path])
    return written


def add_check_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check", action="store_true", help="write nothing; list the stale outputs and exit 1 if any"
    )


def check_or_write(outputs: Mapping[Path, str], *, check: bool, remedy: str) -> int:
    """The generator CLIs' last step: exit status 1 listing stale outputs (``check``), else write.

    ``remedy`` is the command that regenerates them, printed next to every stale path.
    """
    if check:
        stale = stale_outputs(outputs)
        for path in stale:
            print(f"stale: {shown(path)} (run `{remedy}`)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_outputs(outputs):
        print(f"wrote {shown(path)}")
    return 0
