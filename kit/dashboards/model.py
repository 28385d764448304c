"""Dashboards as data: a board is rows of panels, each panel a value with an explicit id.

Ids are written by hand and never reused: alert dashboard_urls and runbook links point at
them (``/d/<uid>?viewPanel=<id>``, through each panel's *anchor*), so adding, moving or
removing a panel must not renumber the others. kit/dashboards_gen.py turns a Board into
Grafana JSON; the boards themselves live in kit/dashboards/{red,slos,saturation}.py.

Descriptions are prose: write them as one (triple-quoted) string, wrapped where it reads well;
every run of whitespace, line breaks included, becomes one space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

# Grafana's own macro and the board's variables: every service selector carries both matchers.
RATE = "$__rate_interval"
SCOPE = 'namespace=~"$namespace", job=~"$job"'

# (value, colour) steps from the base (value None) up.
Steps = Sequence[tuple[float | None, str]]


def _prose(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Panel:
    """One panel. ``targets`` are (PromQL, legend) pairs, lettered A, B, ... in order.

    ``thresholds`` are drawn as dashed lines on a time series, as the background on a stat;
    ``mappings`` name values (value -> (text, colour)); ``minimum`` None lets the axis float.
    """

    id: int
    anchor: str
    title: str
    description: str
    unit: str
    targets: Sequence[tuple[str, str]]
    kind: Literal["timeseries", "stat"] = "timeseries"
    width: int = 12
    thresholds: Steps | None = None
    minimum: float | None = 0
    time_from: str | None = None
    mappings: Mapping[int, tuple[str, str]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "description", _prose(self.description))
        if self.kind == "stat" and self.thresholds is None:
            raise ValueError(f"stat panel {self.anchor!r} needs thresholds (its background colour)")


@dataclass(frozen=True)
class Row:
    id: int
    title: str
    panels: Sequence[Panel]


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    rows: Sequence[Row]
    time_from: str = "now-3h"
    anchors: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "description", _prose(self.description))
        ids = [row.id for row in self.rows] + [p.id for row in self.rows for p in row.panels]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate panel ids {duplicates} on {self.uid}")
        anchors: dict[str, int] = {}
        for panel in (p for row in self.rows for p in row.panels):
            if panel.anchor in anchors:
                raise ValueError(f"duplicate panel anchor {panel.anchor!r} on {self.uid}")
            anchors[panel.anchor] = panel.id
        object.__setattr__(self, "anchors", anchors)
