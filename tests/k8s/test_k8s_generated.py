"""Generated files are fresh, each environment's PrometheusRule is exactly its alerts/ output (dev
also carries the preview rule set), and it passes promtool."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kit import alerts_gen, k8s_overlays, render, slo
from kit.k8s_checks import Obj, of_kind
from kit.k8s_overlays import PLACEHOLDER_RULES, OverlayError
from kit.paths import ROOT
from tests.k8s.support import CONFIG
from testsupport.promtool import check_rules

IMAGE = CONFIG.image_repository
DIGEST = "sha256:" + "ab" * 32


def test_generated_overlays_are_fresh() -> None:
    stale = render.stale_outputs(k8s_overlays.render_all())
    assert [str(path.relative_to(ROOT)) for path in stale] == [], "run `make generate-k8s` and commit"


def test_every_overlay_folder_is_generated() -> None:
    """No hand-made overlay hides next to the generated ones."""
    outputs = k8s_overlays.render_all()
    on_disk = {path for path in (ROOT / "k8s" / "overlays").rglob("*") if path.is_file()}
    assert on_disk == {path for path in outputs if "overlays" in path.parts}


def _expected_groups(environment: str) -> list[object]:
    path = alerts_gen.rules_file(slo.load(), environment)
    if path.exists():
        groups: list[object] = yaml.safe_load(path.read_text())["groups"]
        return groups
    return list(PLACEHOLDER_RULES["groups"])


def test_prometheus_rule_is_what_alerts_generates(rendered: dict[str, list[Obj]]) -> None:
    for overlay, objects in rendered.items():
        rules = {rule["metadata"]["name"]: rule for rule in of_kind(objects, "PrometheusRule")}
        if not CONFIG.get(overlay).alerting:
            assert rules == {}, overlay
            continue
        expected = {"reference-service": overlay}
        if overlay == k8s_overlays.PREVIEW_RULES_HOST:
            expected["reference-service-preview"] = "preview"
        assert set(rules) == set(expected), overlay
        for name, environment in expected.items():
            groups = rules[name]["spec"]["groups"]
            assert groups == _expected_groups(environment), f"{overlay}/{name}: run `make generate`"
            assert all(group["name"].startswith(f"reference-service-{environment}-") for group in groups)


@pytest.mark.parametrize("overlay", ["prod", "dev"])
def test_prometheus_rule_passes_promtool(
    rendered: dict[str, list[Obj]], tmp_path: Path, overlay: str
) -> None:
    for rule in of_kind(rendered[overlay], "PrometheusRule"):
        rules_file = tmp_path / "rules.yaml"
        rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        result = check_rules(rules_file)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The promtool step above is able to fail."""
    rules_file = tmp_path / "rules.yaml"
    broken = {"groups": [{"name": "g", "rules": [{"alert": "Broken", "expr": "sum(rate(x[5m]) by"}]}]}
    rules_file.write_text(yaml.safe_dump(broken))
    assert check_rules(rules_file).returncode != 0


def test_a_rules_file_that_is_not_one_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "rules.yaml"
    bogus.write_text("- just a list\n")
    with pytest.raises(OverlayError, match="not a Prometheus rules file"):
        k8s_overlays.load_alert_rules(bogus)


def test_check_mode_reports_a_stale_overlay(k8s_copy: Path) -> None:
    outputs = k8s_overlays.render_all(k8s_dir=k8s_copy)
    assert render.stale_outputs(outputs) == []
    hand_edit = k8s_copy / "overlays" / "prod" / "env-settings.yaml"
    hand_edit.write_text(hand_edit.read_text().replace("minReplicas: 3", "minReplicas: 1"))
    assert render.stale_outputs(outputs) == [hand_edit]


def test_latest_is_refused_as_an_image_tag() -> None:
    prod = CONFIG.get("prod")
    with pytest.raises(OverlayError, match="'latest' is not a version"):
        k8s_overlays.release_for(prod.model_copy(update={"image_tag": "latest"}), CONFIG.image_repository)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pin-image", "prod", "sha256:1234"], "digest must look like sha256:<64 lowercase hex>"),
        (["pin-image", "nowhere", "sha256:" + "a" * 64], "no kustomization.yaml in"),
        (["preview", "--pr", "0", "--image", f"{IMAGE}@{DIGEST}"], "pull request number must be positive"),
        (["preview", "--pr", "7", "--image", f"{IMAGE}:pr-7"], "image must look like <repository>@sha256:"),
        (
            ["preview", "--pr", "7", "--image", f"docker.io/someone/app@{DIGEST}"],
            "is not from ghcr.io/example/reference-service",
        ),
    ],
)
def test_cli_refuses_bad_input_in_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert k8s_overlays.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1
