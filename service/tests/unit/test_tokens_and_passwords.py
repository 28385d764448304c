from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, tzinfo

import jwt
import pytest

from app.identity.infrastructure.passwords import Argon2PasswordHasher, owasp_argon2id
from app.identity.infrastructure.tokens import JwtTokenService
from app.kernel.clock import utcnow
from app.kernel.errors import AuthenticationError
from app.kernel.principal import Principal, Role

SECRET = "s" * 64


def tokens(**overrides: object) -> JwtTokenService:
    options: dict[str, object] = {"issuer": "iss", "audience": "aud", "ttl_seconds": 60}
    options.update(overrides)
    return JwtTokenService(SECRET, **options)  # type: ignore[arg-type]


def claims(**overrides: object) -> dict[str, object]:
    now = utcnow()
    values: dict[str, object] = {
        "sub": str(uuid.uuid4()),
        "role": "member",
        "iss": "iss",
        "aud": "aud",
        "iat": now,
        "exp": now + timedelta(minutes=1),
        "jti": uuid.uuid4().hex,
        "ver": 0,
    }
    values.update(overrides)
    return values


def test_an_issued_token_verifies_to_its_principal() -> None:
    principal = Principal(uuid.uuid4(), Role.MANAGER)
    issued = tokens().issue(principal, 3)
    assert issued.expires_in == 60
    verified = tokens().verify(issued.token)
    assert verified.principal == principal
    assert verified.version == 3
    assert verified.token_id and verified.expires_at > time.time()


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(jwt.encode(claims(), "another-key-" + "k" * 40, algorithm="HS256"), id="other-key"),
        pytest.param(jwt.encode(claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(
            jwt.encode(claims(exp=utcnow() - timedelta(minutes=5)), SECRET, algorithm="HS256"), id="expired"
        ),
        pytest.param(jwt.encode(claims(aud="elsewhere"), SECRET, algorithm="HS256"), id="wrong-audience"),
        pytest.param(jwt.encode(claims(iss="evil"), SECRET, algorithm="HS256"), id="wrong-issuer"),
        pytest.param(jwt.encode(claims(role="superuser"), SECRET, algorithm="HS256"), id="unknown-role"),
        pytest.param(jwt.encode(claims(sub="not-a-uuid"), SECRET, algorithm="HS512"), id="other-alg"),
        pytest.param("garbage", id="garbage"),
        # Security review I3: validly signed, but not what this service issues.
        pytest.param(
            jwt.encode(claims(exp=datetime(2100, 1, 1, tzinfo=UTC)), SECRET, algorithm="HS256"),
            id="far-future-exp",
        ),
        pytest.param(jwt.encode(claims(exp=10**20), SECRET, algorithm="HS256"), id="huge-exp"),
        pytest.param(
            jwt.encode(claims(exp=str(int(time.time()) + 30)), SECRET, algorithm="HS256"), id="string-exp"
        ),
        pytest.param(jwt.encode(claims(aud=["aud", "other"]), SECRET, algorithm="HS256"), id="list-aud"),
        pytest.param(jwt.encode(claims(ver="0"), SECRET, algorithm="HS256"), id="string-version"),
        pytest.param(jwt.encode(claims(ver=True), SECRET, algorithm="HS256"), id="bool-version"),
        pytest.param(jwt.encode(claims(jti=7), SECRET, algorithm="HS256"), id="int-jti"),
        pytest.param(
            jwt.api_jws.encode(
                jwt.utils.base64url_decode(jwt.encode(claims(), "x" * 40).split(".")[1]),
                "x" * 40,
                algorithm="HS256",
            ),
            id="other-key-raw-jws",
        ),
        pytest.param(
            # RS/HS confusion: header says RS256, signed with HMAC over the (public) key material.
            ".".join(
                [
                    jwt.utils.base64url_encode(b'{"alg":"RS256","typ":"JWT"}').decode(),
                    *jwt.encode(claims(), SECRET, algorithm="HS256").split(".")[1:],
                ]
            ),
            id="alg-confusion-rs256",
        ),
    ],
)
def test_forged_or_stale_tokens_are_refused(forged: str) -> None:
    with pytest.raises(AuthenticationError):
        tokens().verify(forged)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss", "aud", "role", "jti", "ver"])
def test_a_token_without_required_claims_is_refused(missing: str) -> None:
    incomplete = claims()
    del incomplete[missing]
    with pytest.raises(AuthenticationError):
        tokens().verify(jwt.encode(incomplete, SECRET, algorithm="HS256"))


def test_a_tampered_payload_with_the_original_signature_is_refused() -> None:
    issued = tokens().issue(Principal(uuid.uuid4(), Role.MEMBER), 0).token
    header, _, signature = issued.split(".")
    elevated = jwt.encode(claims(role="admin"), "whatever-key-" + "w" * 40, algorithm="HS256").split(".")[1]
    with pytest.raises(AuthenticationError):
        tokens().verify(f"{header}.{elevated}.{signature}")


@pytest.mark.parametrize("algorithm", ["none", "RS256", "ES256", "HS1"])
def test_only_hmac_algorithms_can_be_configured(algorithm: str) -> None:
    """Security review I4: JWT_ALGORITHM=none passed settings validation before."""
    with pytest.raises(ValueError, match="not one of"):
        tokens(algorithm=algorithm)


class FakeClock:
    """One clock for the token cache and for PyJWT's own expiry check."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = time.time()
        clock = self

        class FrozenDatetime(datetime):
            @classmethod
            def now(cls, tz: tzinfo | None = None) -> FrozenDatetime:
                return cls.fromtimestamp(clock.now, tz)

        monkeypatch.setattr(jwt.api_jwt, "datetime", FrozenDatetime)

    def __call__(self) -> float:
        return self.now


def test_a_cached_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    principal = Principal(uuid.uuid4(), Role.MEMBER)
    token = tokens(ttl_seconds=60).issue(principal, 0).token  # before the patch: PyJWT encodes datetimes
    clock = FakeClock(monkeypatch)
    service = tokens(ttl_seconds=60, leeway_seconds=10, clock=clock)
    assert service.verify(token).principal == principal
    assert token in service._verified
    clock.now += 65  # past exp but within the leeway: still valid, from the cache
    assert service.verify(token).principal == principal
    clock.now += 10  # past exp + leeway: the cached entry must not outlive the token
    with pytest.raises(AuthenticationError):
        service.verify(token)
    assert token not in service._verified


def test_the_cache_is_bounded_and_keeps_only_verified_tokens() -> None:
    service = tokens(cache_size=3)
    issued = [service.issue(Principal(uuid.uuid4(), Role.MEMBER), 0).token for _ in range(5)]
    for token in issued:
        service.verify(token)
    with pytest.raises(AuthenticationError):
        service.verify("garbage")
    assert list(service._verified) == issued[-3:]  # least recently used evicted first
    service.verify(issued[2])  # a hit moves it to the back
    service.verify(issued[0])  # verified again from scratch, evicting the oldest (issued[3])
    assert list(service._verified) == [issued[4], issued[2], issued[0]]


def test_argon2id_uses_the_owasp_parameters() -> None:
    encoded = owasp_argon2id().hash("a password of some length")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_hashing_runs_off_the_event_loop_and_verifies() -> None:
    hasher = Argon2PasswordHasher(concurrency=2)
    encoded = await hasher.hash("correct horse battery staple")
    assert await hasher.verify("correct horse battery staple", encoded) == (True, None)
    assert (await hasher.verify("wrong password here", encoded))[0] is False


async def test_an_outdated_hash_is_upgraded_on_verify() -> None:
    from pwdlib.hashers.argon2 import Argon2Hasher

    weak = Argon2Hasher(memory_cost=8 * 1024, time_cost=1, parallelism=1).hash("correct horse battery staple")
    matches, upgraded = await Argon2PasswordHasher().verify("correct horse battery staple", weak)
    assert matches is True
    assert upgraded is not None and "m=19456,t=2,p=1" in upgraded


def test_hashing_cost_is_printed_for_the_record(capsys: pytest.CaptureFixture[str]) -> None:
    # Not a timed assertion: the figure is reported; the benchmark owns the goal.
    start = time.process_time()
    owasp_argon2id().hash("correct horse battery staple")
    print(f"argon2id hash CPU: {(time.process_time() - start) * 1000:.1f} ms")
    assert "argon2id hash CPU" in capsys.readouterr().out
