"""Every command a runbook names exists (kit.runbook_commands); the checker catches the review's findings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from kit import runbook_commands as rc

FACTS = rc.repo()
CONVENTIONS = rc.convention_variables()


def test_every_command_in_every_runbook_exists() -> None:
    problems = rc.check_all()
    assert [str(p) for p in problems] == []
    assert len(rc.runbook_files()) >= 25  # alerts and procedures are both read


def test_the_checker_reads_commands_from_blocks_and_prose() -> None:
    runbook = rc.RUNBOOKS / "ReferenceServiceOutboxDeadLettered.md"
    argvs = [c.argv[:4] for c in rc.commands_in(runbook)]
    assert ("kubectl", "-n", "$NAMESPACE", "exec") in argvs


def problems_in(tmp_path: Path, snippet: str, prose: str = "") -> list[str]:
    path = tmp_path / "runbook.md"
    path.write_text(f"# Test\n\n{prose}\n\n```bash\n{snippet}\n```\n")
    return [p.message for p in rc.check_runbook(path, FACTS, CONVENTIONS)]


GOOD = [
    "kubectl -n $NAMESPACE rollout undo deployment/reference-service-api",
    "kubectl -n $NAMESPACE logs <pod> -c migrate --previous --tail=20",
    "kubectl -n $NAMESPACE get pods -l app.kubernetes.io/component=worker -o wide",
    "kubectl -n $NAMESPACE get endpointslices -l kubernetes.io/service-name=reference-service",
    "kubectl -n $NAMESPACE scale deployment/reference-service-worker --replicas=0",
    'kubectl -n $NAMESPACE patch hpa reference-service-api -p \'{"spec":{"minReplicas":4}}\'',
    "kubectl -n $NAMESPACE exec -it deploy/reference-service-api -c api -- python -m app.probe ready",
    "kubectl -n $NAMESPACE exec deploy/reference-service-worker -- "
    "python -m app.worker replay-dead --event-id <e> --event-id <f>",
    "kubectl -n monitoring get pods -l app.kubernetes.io/name=alertmanager",
    "make restore-drill && make migration-lint",
    "python -m kit.migration_lint --versions service/src/app/migrations/versions",
    "curl -sS https://$HOST/api/v1/projects | jq .",
    "amtool --alertmanager.url=http://127.0.0.1:9093 silence add service=reference-service --duration=1h",
    "export DB=x\necho $DB",
    "kit status --env $ENV",
    "kit rollback --env $ENV --to-revision <revision> --yes",
    "kit smoke --url https://$HOST --json | jq .steps",
    "kit dead-letters discard --env $ENV --event-id <uuid> --reason '<ticket>: consumer gone'",
    "kit preview down --pr <n> --yes",
]


@pytest.mark.parametrize("snippet", GOOD)
def test_correct_commands_pass(tmp_path: Path, snippet: str) -> None:
    assert problems_in(tmp_path, snippet) == []


BAD = [
    # R2: deleting the live TLS Secret
    ("kubectl -n $NAMESPACE delete secret reference-service-tls", "deleting a Secret"),
    # R3: a route the edge does not serve
    ("curl -sS https://api.example.com/health/live", "/health/live is not routed by the edge"),
    ("curl -sS https://$HOST/api/v1/nothing-here", "the app serves no such route"),
    # R4: the log format is compact JSON
    ('kubectl -n $NAMESPACE logs deploy/reference-service-api | grep \'"level": "error"\'', "compact JSON"),
    # R5/R6: unsetting settings by hand
    ("kubectl -n $NAMESPACE set env deployment/reference-service-worker WEBHOOK_URL-", "set env"),
    # R7: undefined variables
    ('psql "$PG_URL" -c "select 1"', "$PG_URL is defined nowhere"),
    # R9: stale kinds, scale under an HPA, init containers in jsonpaths
    ("kubectl -n $NAMESPACE get endpoints -l app.kubernetes.io/component=api", "Endpoints are deprecated"),
    ("kubectl -n $NAMESPACE scale deployment/reference-service-api --replicas=5", "HorizontalPodAutoscaler"),
    (
        "kubectl -n $NAMESPACE get pod <pod> -o jsonpath='{.status.containerStatuses[*].lastState}'",
        "init container",
    ),
    # names, labels, containers against the rendered manifests
    ("kubectl -n $NAMESPACE rollout undo deployment/reference-service-apí", "no Deployment named"),
    ("kubectl -n $NAMESPACE get pods -l app=api", "matches no Pod"),
    ("kubectl -n $NAMESPACE logs deploy/reference-service-api -c migrator", "no container 'migrator'"),
    ("kubectl -n $NAMESPACE get widgets", "unknown resource type"),
    ("kubectl -n $NAMESPACE logs deploy/reference-service-api --since-tim=1h", "has no flag --since-tim"),
    ("kubectl -n somewhere get pods", "neither the service's"),
    ("kubectl -n gateway-system get gateway public", "not a known platform object"),
    ("kubectl apply -k k8s/overlays/nowhere", "no such file"),
    # make, python -m and their parsers
    ("make restore-drills", "no make target 'restore-drills'"),
    ("python -m app.nothing", "no module app.nothing"),
    ("python -m app.worker replay-dead --event-id not-a-uuid", "not an event id"),
    ("python -m app.migrate downgrade", "invalid choice"),
    (
        "kubectl -n $NAMESPACE exec deploy/reference-service-api -- python -m kit.restore_drill",
        "not in the image",
    ),
    ("amtool silence add --duraton=1h x=y", "has no flag --duraton"),
    # kit against its own parser
    ("kit stauts --env $ENV", "invalid choice: 'stauts'"),
    ("kit rollback --env $ENV --force", "unrecognized arguments: --force"),
    ("kit dead-letters replay --env $ENV", "one of the arguments --event-id --all is required"),
    ("kit db-shell", "the following arguments are required: --env"),
    ("kit preview up --pr abc", "pull request number must be a positive integer"),
    ("kit status --env $KIT_ENVIRONMENT", "$KIT_ENVIRONMENT is defined nowhere"),
]


@pytest.mark.parametrize(("snippet", "expected"), BAD, ids=[b[1] for b in BAD])
def test_broken_commands_are_flagged(tmp_path: Path, snippet: str, expected: str) -> None:
    found = problems_in(tmp_path, snippet)
    assert any(expected in message for message in found), found


def test_a_trailing_comment_ends_at_the_line(tmp_path: Path) -> None:
    snippet = "make restore-drill  # the drill's small form\nmake restore-drils\njq '.a # not a comment'"
    assert problems_in(tmp_path, snippet) == ["no make target 'restore-drils'"]
    argvs = [c.argv for c in rc.split_commands(tmp_path / "x.md", snippet)]
    assert argvs == [("make", "restore-drill"), ("make", "restore-drils"), ("jq", ".a # not a comment")]


def test_prose_may_name_a_kit_command_without_its_required_options(tmp_path: Path) -> None:
    named = "Roll back with `kit rollback`, or replay with `kit dead-letters replay --all`."
    assert problems_in(tmp_path, "true", named) == []
    misspelt = "Roll back with `kit rollback --to-revison <n>`, then `kit dead-letter list`."
    assert problems_in(tmp_path, "true", misspelt) == [
        "kit rollback has no flag --to-revison",
        "kit dead-letter list: kit: argument COMMAND: invalid choice: 'dead-letter' (choose from "
        "'status', 'smoke', 'rollback', 'dead-letters', 'preview', 'db-shell')",
    ]


def test_promql_metric_names_come_from_the_service(tmp_path: Path) -> None:
    assert "http_requests_total" in FACTS.service_metrics
    assert "outbox_oldest_pending_age_seconds" in FACTS.service_metrics
    assert "db_pool_connections_in_use" in FACTS.service_metrics
    prose = (
        "```promql\nsum(rate(http_request_total[5m]))\n```\n"
        "```promql\nsum(rate(http_requests_total[5m]))\n```"
    )
    found = problems_in(tmp_path, "true", prose)
    assert found == ["metric http_request_total is exported by nothing the kit knows"]


def test_the_db_shell_pod_has_a_writable_tmp_and_its_network_policy() -> None:
    """Pod security is checkov's (tests/k8s/test_k8s_checkov.py scans runbooks/procedures)."""
    from kit import k8s_checks

    pod = next(
        o
        for o in FACTS.objects
        if o.get("kind") == "Pod" and o["metadata"]["name"] == "reference-service-db-shell"
    )
    template = k8s_checks.PodTemplate(pod, pod["spec"], pod["metadata"]["labels"])
    assert k8s_checks.writable_tmp_violations(template) == []
    policies = [
        o for o in FACTS.objects
        if o.get("kind") == "NetworkPolicy"
        and k8s_checks._selects(o["spec"]["podSelector"].get("matchLabels", {}), pod["metadata"]["labels"])
    ]  # fmt: skip
    assert {p["metadata"]["name"] for p in policies} == {"default-deny-all", "reference-service-db-shell"}
    allowed = policies[-1]["spec"]["egress"]
    assert {port["port"] for rule in allowed for port in rule["ports"]} == {53, 5432}
    assert policies[-1]["spec"]["ingress"] == []
    # Not selected by the API's Service: the shell never receives user traffic.
    service = next(
        o
        for o in FACTS.objects
        if o.get("kind") == "Service" and o["metadata"]["name"] == "reference-service"
    )
    assert not k8s_checks._selects(service["spec"]["selector"], pod["metadata"]["labels"])


def test_runbook_sql_runs_against_the_migrated_schema(postgres_database: str) -> None:
    from app.migrate import upgrade
    from app.settings import Settings

    upgrade(Settings(environment="test", database_url=postgres_database))
    statements = [(p.name, s) for p in rc.runbook_files() for s in rc.sql_statements(p)]
    assert len(statements) >= 5

    async def explain_all() -> list[str]:
        connection = await asyncpg.connect(postgres_database.replace("+asyncpg", ""))
        errors = []
        try:
            for name, statement in statements:
                try:
                    await connection.execute(f"EXPLAIN {statement}")
                except asyncpg.PostgresError as exc:
                    errors.append(f"{name}: {statement[:80]}: {exc}")
        finally:
            await connection.close()
        return errors

    assert asyncio.run(explain_all()) == []


def test_cli_prints_a_summary_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert rc.main([]) == 0
    assert capsys.readouterr().out.startswith("runbook_commands: ")
