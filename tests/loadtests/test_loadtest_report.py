"""The gate's outputs are well-formed: JSON, JUnit XML, Markdown and the PNG plot."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from loadtests import gate, report
from loadtests.runstats import TimelinePoint
from tests.loadtests.helpers import CREATE, LIST, endpoint, run_stats, targets

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _breached_run() -> tuple[object, ...]:
    timeline = [
        TimelinePoint(
            float(t),
            12,
            t < 2,
            {5.0: 50},
            {"GET /api/v1/projects": {"n": 50, "fails": 0, "p50": 4.0, "p95": 5.0}},
        )
        for t in range(12)
    ]
    stats = run_stats(
        endpoint(LIST, {5.0: 940, 300.0: 60}),  # 6 % over 250 ms: a latency breach
        endpoint(CREATE, {10.0: 10}, client_errors=5),  # 50 % 4xx: the journey broke (inconclusive)
        endpoint(("GET", "/metrics"), {3.0: 10}),
        timeline=timeline,
    )
    env_targets = targets()
    return stats, env_targets, gate.evaluate(stats, env_targets, gate.Policy())


def test_all_outputs_are_written_and_well_formed(tmp_path: Path) -> None:
    stats, env_targets, result = _breached_run()
    paths = report.write_all(tmp_path, stats, env_targets, result)  # type: ignore[arg-type]
    summary = json.loads(paths[report.SUMMARY_JSON].read_text())
    assert summary["verdict"] == "breach" and summary["exit_code"] == 3
    assert {e["endpoint"] for e in summary["endpoints"]} == {
        "GET /api/v1/projects",
        "POST /api/v1/projects",
        "GET /metrics",
    }
    assert paths[report.LATENCY_PNG].read_bytes().startswith(PNG_MAGIC)
    markdown = paths[report.SUMMARY_MD].read_text()
    assert markdown.startswith("## Load test `ci`: BREACH")
    row = (
        "| `GET /api/v1/projects` | read | 1000 | 100.0 | 0 | 0 / 0 | 6.00 (> 250 ms) | 5 | 300 | 300 | 100 |"
    )
    assert row + " ok |" in markdown
    assert "| `POST /api/v1/projects` | write | 10 | 1.0 | 0 | 5 / 0 | 0.00 (> 250 ms) |" in markdown
    assert markdown.count("| inconclusive |") == 1  # the write endpoint's journey
    assert "| class write | availability | 10 | 0 | 0.00 | 1.00 | 238 | not judged |" in markdown
    assert "| class read | latency | 1000 | 60 | 6.00 | 1.00 | 238 | breach | 6.00% over 250 ms" in markdown
    assert "| `GET /metrics` | - |" in markdown and "not gated" in markdown
    assert "![latency over time](latency.png)" in markdown


def test_junit_has_a_failure_per_breach_and_an_error_per_inconclusive_check(tmp_path: Path) -> None:
    stats, _, result = _breached_run()
    suite = ET.fromstring(report.junit(result, stats))  # type: ignore[arg-type]
    assert suite.tag == "testsuite" and suite.get("name") == "loadtest.ci"
    cases = suite.findall("testcase")
    assert int(suite.get("tests", "0")) == len(cases) > 0
    failures = [c for c in cases if c.find("failure") is not None]
    errors = [c for c in cases if c.find("error") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failures] == [
        ("loadtest.ci.class read", "latency SLI"),
        ("loadtest.ci.service", "latency SLI"),
    ]
    assert [(c.get("classname"), c.get("name")) for c in errors] == [
        ("loadtest.ci.POST /api/v1/projects", "journey")
    ]
    assert [(c.get("classname"), c.get("name")) for c in skipped] == [
        ("loadtest.ci.class write", "availability SLI"),
        ("loadtest.ci.class write", "latency SLI"),
    ]
    assert suite.get("failures") == "2" and suite.get("errors") == "1" and suite.get("skipped") == "2"
