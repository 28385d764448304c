"""Runbooks: exactly one per alert, the required sections, PromQL that parses, links that resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from kit import alerts_gen, slo
from kit.paths import DASHBOARDS, RUNBOOKS
from kit.promql import selector_uses

SPEC = slo.load()
ALERT_NAMES = alerts_gen.alert_names(SPEC)
INDEX = RUNBOOKS / "README.md"
RUNBOOK_FILES = sorted(p for p in RUNBOOKS.glob("*.md") if p != INDEX)
PROCEDURE_FILES = sorted((RUNBOOKS / "procedures").glob("*.md"))
SECTIONS = ["Meaning", "Impact", "Diagnosis", "Mitigation", "Escalation"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)|^\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
PROMQL_BLOCK = re.compile(r"```promql\n(.*?)```", re.DOTALL)


def _links(path: Path) -> list[str]:
    return [a or b for a, b in LINK.findall(path.read_text())]


def test_one_runbook_per_alert_and_no_orphans() -> None:
    assert sorted(p.stem for p in RUNBOOK_FILES) == sorted(ALERT_NAMES)


def test_index_lists_every_runbook_and_procedure() -> None:
    linked = {link for link in _links(INDEX) if link.endswith(".md")}
    assert {link for link in linked if "/" not in link} == {p.name for p in RUNBOOK_FILES}
    assert {link for link in linked if "/" in link} == {f"procedures/{p.name}" for p in PROCEDURE_FILES}
    assert len(PROCEDURE_FILES) >= 10


@pytest.mark.parametrize("path", PROCEDURE_FILES, ids=lambda p: p.stem)
def test_procedures_have_a_title_and_an_escalation_or_owner(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# ")
    assert "## Escalation" in text or "## Who decides" in text


@pytest.mark.parametrize("path", RUNBOOK_FILES, ids=lambda p: p.stem)
def test_required_sections_in_order(path: Path) -> None:
    lines = path.read_text().splitlines()
    assert lines[0] == f"# {path.stem}"
    headings = [line[3:] for line in lines if line.startswith("## ")]
    assert headings == SECTIONS
    text = path.read_text()
    for section in SECTIONS:
        body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
        assert len(body.strip()) > 40, f"section {section} is empty"


@pytest.mark.parametrize("path", RUNBOOK_FILES, ids=lambda p: p.stem)
def test_diagnosis_has_promql_and_a_dashboard_panel(path: Path) -> None:
    diagnosis = path.read_text().split("## Diagnosis\n", 1)[1].split("\n## ", 1)[0]
    assert PROMQL_BLOCK.search(diagnosis), "Diagnosis needs the exact PromQL"
    assert f"{SPEC.service.grafana_base_url}/d/" in diagnosis or "kubectl" in diagnosis


@pytest.mark.parametrize("path", RUNBOOK_FILES, ids=lambda p: p.stem)
def test_promql_blocks_parse(path: Path) -> None:
    blocks = PROMQL_BLOCK.findall(path.read_text())
    assert blocks
    for block in blocks:
        expr = " ".join(line.strip() for line in block.splitlines())
        selector_uses(expr)  # raises ValueError with the parser's message


@pytest.mark.parametrize("path", [*RUNBOOK_FILES, *PROCEDURE_FILES, INDEX], ids=lambda p: p.stem)
def test_links_resolve(path: Path) -> None:
    for link in _links(path):
        if link.startswith(SPEC.service.grafana_base_url):
            url = urlparse(link)
            uid = url.path.removeprefix("/d/")
            dashboard = DASHBOARDS / f"{uid}.json"
            assert dashboard.is_file(), f"{link}: no dashboard {uid}"
            if "viewPanel" in url.query:
                panel_id = int(parse_qs(url.query)["viewPanel"][0])
                ids = {p["id"] for p in json.loads(dashboard.read_text())["panels"] if p["type"] != "row"}
                assert panel_id in ids, f"{link}: no panel {panel_id}"
        elif link.startswith(("http://", "https://")):
            continue  # external systems (ticketing, heartbeat) are examples, not checked offline
        else:
            target, _, anchor = link.partition("#")
            resolved = (path.parent / target).resolve() if target else path
            assert resolved.exists(), f"{link} does not resolve"
            if anchor:
                headings = {
                    re.sub(r"[^a-z0-9 -]", "", line.lstrip("# ").lower()).replace(" ", "-")
                    for line in resolved.read_text().splitlines()
                    if line.startswith("#")
                }
                assert anchor in headings, f"{link}: no heading #{anchor}"


def test_runbook_promql_uses_recorded_or_real_metric_names() -> None:
    """A typo in a runbook query would silently return nothing during an incident."""
    known_prefixes = (
        "http_",
        "db_pool_",
        "outbox_",
        "circuit_breaker_",
        "rate_limit_",
        "synthetic_",
        "kube_",
        "certmanager_",
        "up",
        "ALERTS",
        "prometheus_",
        "slo:",
        "endpoint_class:",
    )
    for path in RUNBOOK_FILES:
        for block in PROMQL_BLOCK.findall(path.read_text()):
            for use in selector_uses(" ".join(block.split())):
                assert use.name.startswith(known_prefixes), f"{path.name}: unknown metric {use.name}"
