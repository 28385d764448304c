from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import Environment, Settings

STRONG = "k" * 40


@pytest.mark.parametrize("environment", [Environment.PROD, Environment.STAGING])
@pytest.mark.parametrize("secret", [None, "short", "changeme"])
def test_production_refuses_a_missing_or_weak_secret(environment: Environment, secret: str | None) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(environment=environment, jwt_secret=secret)  # type: ignore[arg-type]


def test_production_accepts_a_strong_secret() -> None:
    assert Settings(environment=Environment.PROD, jwt_secret=STRONG).environment is Environment.PROD  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", ["short", "changeme"])
def test_production_refuses_a_weak_webhook_signing_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="WEBHOOK_SIGNING_SECRET must be set to a random value"):
        Settings(environment=Environment.PROD, jwt_secret=STRONG, webhook_signing_secret=secret)  # type: ignore[arg-type]


def test_production_settings_accept_a_strong_or_no_webhook_signing_secret() -> None:
    """Unset is for the API, which never signs; the worker refuses to start without it (test_cli)."""
    strong = Settings(environment=Environment.PROD, jwt_secret=STRONG, webhook_signing_secret=STRONG)  # type: ignore[arg-type]
    assert strong.webhook_signing_secret is not None
    assert strong.webhook_signing_secret.get_secret_value() == STRONG
    assert Settings(environment=Environment.PROD, jwt_secret=STRONG).webhook_signing_secret is None  # type: ignore[arg-type]


def test_production_refuses_fault_injection_and_wildcard_cors() -> None:
    with pytest.raises(ValidationError, match="FAULT_INJECTION"):
        Settings(environment=Environment.PROD, jwt_secret=STRONG, fault_injection_error_ratio=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="CORS"):
        Settings(environment=Environment.PROD, jwt_secret=STRONG, cors_origins="*")  # type: ignore[arg-type]


@pytest.mark.parametrize("environment", [Environment.STAGING, Environment.PROD])
def test_production_like_environments_refuse_to_turn_rate_limits_off(environment: Environment) -> None:
    """A load test raises staging's limits (RATE_LIMIT_* overrides); it never switches them off."""
    with pytest.raises(ValidationError, match="RATE_LIMIT_ENABLED=false is refused"):
        Settings(environment=environment, jwt_secret=STRONG, rate_limit_enabled=False)  # type: ignore[arg-type]
    raised = Settings(environment=environment, jwt_secret=STRONG, rate_limit_write="12000/minute")  # type: ignore[arg-type]
    assert raised.rate_limit_enabled
    assert raised.rate_limit_write == "12000/minute"


def test_local_runs_without_a_secret_and_lists_come_from_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "JWT_SECRET", "ENVIRONMENT"):  # hermetic: not the machine's values
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    settings = Settings()
    assert settings.jwt_secret is None
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.is_sqlite


@pytest.mark.parametrize("environment", ["dev", "preview", "staging", "prod"])
@pytest.mark.parametrize("value", ["*", "10.0.0.0/8, *"])
def test_deployed_environments_refuse_trusting_every_proxy(environment: str, value: str) -> None:
    """Security review M4: FORWARDED_ALLOW_IPS=* let any peer choose its rate-limit bucket."""
    with pytest.raises(ValidationError, match="FORWARDED_ALLOW_IPS"):
        Settings(environment=environment, jwt_secret=STRONG, forwarded_allow_ips=value)  # type: ignore[arg-type]
    assert Settings(environment=environment, jwt_secret=STRONG, forwarded_allow_ips="10.244.0.0/16")


@pytest.mark.parametrize("environment", ["dev", "preview"])
def test_internet_facing_test_environments_refuse_a_weak_secret_too(environment: str) -> None:
    """Security review I4: dev and preview accepted JWT_SECRET=secret."""
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(environment=environment, jwt_secret="secret")  # type: ignore[arg-type]
    assert Settings(environment=environment).jwt_secret is None  # unset: a random per-process key


@pytest.mark.parametrize("algorithm", ["none", "RS256", "hs256"])
def test_only_hmac_jwt_algorithms_are_accepted(algorithm: str) -> None:
    with pytest.raises(ValidationError, match="jwt_algorithm"):
        Settings(jwt_algorithm=algorithm)  # type: ignore[arg-type]
