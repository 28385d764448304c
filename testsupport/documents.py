"""Variants of a parsed YAML/JSON document for schema-error tests: one key changed or removed."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def with_changes(document: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``document`` with each dotted key of ``changes`` set to its value (a value of
    ``...`` deletes the key); the original is left as it was."""
    edited = copy.deepcopy(dict(document))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = edited
        for key in parents:
            node = node[key]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return edited
