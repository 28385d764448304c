"""The rendered overlays' security settings: what the service really gets in each environment."""

from __future__ import annotations

import pytest

from app.settings import Settings
from kit.k8s_checks import Obj, of_kind
from tests.k8s.support import CONFIG, OVERLAYS


def _config_map(objects: list[Obj]) -> dict[str, str]:
    data: dict[str, str] = of_kind(objects, "ConfigMap")[0]["data"]
    return data


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_trusts_only_the_gateway_and_is_accepted_by_settings(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    data = _config_map(rendered[overlay])
    assert data["FORWARDED_ALLOW_IPS"] == ",".join(CONFIG.gateway_proxy_cidrs)
    assert "*" not in data["FORWARDED_ALLOW_IPS"]
    # The service starts with this ConfigMap (Settings refuses '*' and weak secrets there).
    environment = {key.lower(): value for key, value in data.items() if key.lower() in Settings.model_fields}
    settings = Settings(**environment, jwt_secret="k" * 48)
    assert settings.forwarded_allow_ips == data["FORWARDED_ALLOW_IPS"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_docs_are_off_in_production_overlays(rendered: dict[str, list[Obj]], overlay: str) -> None:
    data = _config_map(rendered[overlay])
    expected = "false" if overlay in ("staging", "prod") else None
    assert data.get("DOCS_ENABLED") == expected
