"""The dashboard previews (kit.dashboard_previews): the selected panels exist, and a short real run
(service, worker, Prometheus with the generated rules) gives every one of them data to draw."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest

from kit import dashboard_previews as previews
from kit import slo
from kit.paths import DASHBOARDS
from testsupport.servers import RedisServer

SPEC = slo.load()
TEST_TIME_SCALE = 0.05  # ~9 s of load over the five phases


def test_every_selected_panel_exists_in_the_committed_dashboards() -> None:
    panels = previews.load_panels()
    assert [(p.uid, p.id) for p in panels] == list(previews.PANELS)
    uids = {uid for uid, _ in previews.PANELS}
    assert uids == {path.stem for path in DASHBOARDS.glob("*.json")}, "a preview from every board"
    for panel in panels:
        document = json.loads((DASHBOARDS / f"{panel.uid}.json").read_text())
        titles = {p["id"]: p["title"] for p in document["panels"]}
        assert titles[panel.id] == panel.title
        assert panel.targets, f"{panel.uid}/{panel.id} has no query"


def test_a_missing_panel_id_is_a_clear_error() -> None:
    with pytest.raises(previews.PreviewError, match="reference-service-red has no panel with id 999"):
        previews.load_panels([("reference-service-red", 999)])
    with pytest.raises(previews.PreviewError, match="no dashboard"):
        previews.load_panels([("no-such-board", 1)])


def test_grafana_variables_are_filled_in() -> None:
    expr = 'sum(rate(x{namespace=~"$namespace", job=~"$job"}[$__rate_interval]))'
    assert (
        previews.concrete(expr, step_seconds=2, namespace="ns")
        == 'sum(rate(x{namespace=~"ns", job=~".+"}[4s]))'
    )
    assert previews.rate_interval(10) == "11s"  # step + scrape once the step is past 3 scrapes
    assert previews.legend("{{method}} {{route}}", {"method": "GET", "route": "/x"}) == "GET /x"
    assert previews.legend("", {"b": "2", "a": "1"}) == "a=1, b=2"


def test_unknown_environment_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert previews.main(["--environment", "nowhere", "--out", "/nonexistent"]) == 2
    assert "unknown environment 'nowhere'" in capsys.readouterr().err


@pytest.mark.slow
def test_short_real_run_gives_every_panel_data_and_draws_it(
    tmp_path: Path, postgres_database: str, redis: RedisServer
) -> None:
    panels = previews.load_panels()
    phases = previews.scaled(previews.PHASES, TEST_TIME_SCALE)
    run = previews.capture(
        phases,
        SPEC.alerting_environment,
        panels,
        tmp_path,
        settle=2,
        database_url=postgres_database,
        redis_url=redis.url,
    )

    assert [phase.name for phase, _, _ in run.phases] == [p.name for p in previews.PHASES]
    assert run.requests > 0
    empty = [f"{uid}/{pid}" for (uid, pid), series in run.series.items() if not series]
    assert not empty, f"panels without data: {empty}"
    for panel in panels:
        series = run.series[(panel.uid, panel.id)]
        assert all(s.values and len(s.values) == len(s.times) for s in series)
        path = tmp_path / "out" / panel.file_name
        previews.draw(panel, series, run.phases, run.start, path)
        height, width = matplotlib.image.imread(path).shape[:2]
        assert (width, height) == (800, 400)
        assert path.stat().st_size < 100_000

    index = previews.write_index(run, panels, tmp_path / "out").read_text()
    for panel in panels:
        assert f"]({panel.file_name})" in index and panel.title in index
    assert f"{run.requests} requests" in index
