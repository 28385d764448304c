"""`kit rollback` against the Kubernetes API stand-in: kubectl's undo patch, confirmation, the wait."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from kit.cli import errors, rollback
from tests.cli.conftest import Result, StandIn
from tests.cli.kube_standin import OLD_TAG, REVISION

DEPLOYMENTS = ["reference-service-api", "reference-service-worker"]


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollback, "POLL_SECONDS", 0.01)


def test_rolls_both_deployments_back_to_the_previous_replicaset(
    kit: Callable[..., Result], standin: Callable[..., StandIn]
) -> None:
    api = standin("prod", "healthy")
    previous = {
        d: next(
            rs
            for rs in api.cluster.of_kind("ReplicaSet")
            if rs["metadata"]["name"].startswith(d + "-") and rs["metadata"]["annotations"][REVISION] == "2"
        )
        for d in DEPLOYMENTS
    }
    result = kit("rollback", "--env", "prod", "--yes", "--json", *api.args())
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report == {
        "namespace": "reference-service-prod",
        "rolled_back": [
            {
                "deployment": d,
                "from_revision": 3,
                "to_revision": 2,
                "image": f"ghcr.io/example/reference-service:{OLD_TAG}",
            }
            for d in DEPLOYMENTS
        ],
        "complete": True,
    }
    patches = [path for method, path in api.cluster.requests if method == "PATCH"]
    assert patches == [
        f"/apis/apps/v1/namespaces/reference-service-prod/deployments/{d}" for d in DEPLOYMENTS
    ]
    for name in DEPLOYMENTS:
        live = api.cluster.objects[("Deployment", name)]
        expected = previous[name]["spec"]["template"]
        expected_labels = {
            k: v for k, v in expected["metadata"]["labels"].items() if k != "pod-template-hash"
        }
        # The template is the old ReplicaSet's, without the hash label (what kubectl rollout undo sends).
        assert live["spec"]["template"]["metadata"]["labels"] == expected_labels
        assert live["spec"]["template"]["spec"] == expected["spec"]
        assert live["metadata"]["annotations"][REVISION] == "4"  # the controller's next revision
        assert (
            live["status"]["updatedReplicas"]
            == live["spec"]["replicas"]
            == live["status"]["availableReplicas"]
        )
    assert "waiting for the rollout" in result.err
    assert "(complete)" in result.err.splitlines()[-1]


def test_without_yes_and_without_a_terminal_nothing_changes(
    kit: Callable[..., Result], standin: Callable[..., StandIn]
) -> None:
    api = standin("staging", "healthy")
    result = kit("rollback", "--env", "staging", *api.args())
    assert result.code == errors.ABORTED
    assert "re-run with --yes" in result.err
    assert "revision 3 (ghcr.io/example/reference-service:0.1.0) -> revision 2" in result.err
    assert not [r for r in api.cluster.requests if r[0] == "PATCH"]


def test_declined_confirmation_changes_nothing(
    kit: Callable[..., Result], standin: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = standin("staging", "healthy")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    result = kit("rollback", "--env", "staging", *api.args())
    assert result.code == errors.ABORTED
    assert result.err.strip().endswith("error: aborted: nothing was changed")
    assert not [r for r in api.cluster.requests if r[0] == "PATCH"]


def test_unknown_revision_names_the_kept_ones(
    kit: Callable[..., Result], standin: Callable[..., StandIn]
) -> None:
    api = standin("dev", "healthy")
    result = kit("rollback", "--env", "dev", "--to-revision", "9", "--yes", *api.args())
    assert result.code == errors.NOT_FOUND
    assert result.err.strip() == "error: reference-service-api: no revision 9 (kept: 2, 3)"


def test_plan_refuses_a_paused_deployment() -> None:
    deployment = {"metadata": {"name": "reference-service-api", "uid": "u"}, "spec": {"paused": True}}
    with pytest.raises(errors.KitError, match="is paused: resume it"):
        rollback.plan(deployment, [], None)


def test_the_shipped_operator_role_is_enough_for_status_rollback_and_dead_letters(
    kit: Callable[..., Result], standin: Callable[..., StandIn], postgres_database: str
) -> None:
    """The stand-in enforces the rendered Role `reference-service-kit-operator`, as RBAC would."""
    from kit import k8s_checks
    from tests.cli.test_dead_letters import _seed

    _seed(postgres_database)
    api = standin("prod", "healthy")
    role = k8s_checks.find(list(api.cluster.objects.values()), "Role", "reference-service-kit-operator")
    assert role is not None
    api.cluster.role = role
    api.cluster.secrets = dict.fromkeys(k8s_checks.SECRET_KEYS, "x") | {"DATABASE_URL": postgres_database}
    status = kit("status", "--env", "prod", "--json", *api.args())
    assert status.code == 0, status.err
    # Only the proxy's 503 (no real pods behind it), not a 403 from the API server.
    assert json.loads(status.out)["health"]["status"] == 503
    assert kit("dead-letters", "list", "--env", "prod", "--json", *api.args()).code == 0
    assert kit("rollback", "--env", "prod", "--yes", *api.args()).code == 0

    # Without one rule the command that needs it is denied, in one line.
    api.cluster.role = {**role, "rules": [r for r in role["rules"] if r["resources"] != ["jobs"]]}
    denied = kit("dead-letters", "list", "--env", "prod", *api.args())
    assert denied.code == errors.DENIED
    assert denied.err.strip().startswith("error: create job kit-dead-letters-list-")
    assert 'cannot create resource "jobs" in API group "batch"' in denied.err
