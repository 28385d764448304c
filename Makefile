# Platform reference kit. Two commands do all set-up: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY      := .venv/bin/python
UV      := $(shell command -v uv 2>/dev/null || echo .venv-uv/bin/uv)
SYSTEM_PACKAGES := redis-server prometheus prometheus-alertmanager prometheus-pushgateway
ENV     ?= ci

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# --- environment -----------------------------------------------------------
$(UV):
	@command -v uv >/dev/null 2>&1 || { python3 -m venv .venv-uv && .venv-uv/bin/pip install -q uv==0.13.8; }

# Bytecode compiled at install, as in the image: a process then imports FastAPI and SQLAlchemy
# in 0.3 s each instead of 0.7-1.0 s (measured with PYTHONDONTWRITEBYTECODE=1, where nothing
# would ever cache it), which every server the tests and the benchmark start pays.
.venv/.synced: pyproject.toml uv.lock | $(UV)
	UV_COMPILE_BYTECODE=1 $(UV) sync --locked --all-groups --quiet
	@touch $@

.PHONY: venv
venv: .venv/.synced ## create the virtual environment from uv.lock

.PHONY: system-deps
system-deps: ## apt-get install the servers the tests run for real (as root, only when missing)
	@missing=""; for pkg in $(SYSTEM_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing system packages:$$missing (run as root or install them)"; exit 1; fi; \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# --- run -------------------------------------------------------------------
.PHONY: run
run: venv ## serve the API on 127.0.0.1:8000 (SQLite, in-process fallbacks)
	$(PY) -m app.devserver

.PHONY: worker
worker: venv ## run the outbox worker (delivers project notifications to WEBHOOK_URL)
	$(PY) -m app.worker

.PHONY: migrate
migrate: venv ## apply database migrations (MIGRATION_DATABASE_URL, else DATABASE_URL outside staging/prod)
	$(PY) -m app.migrate

.PHONY: migration-lint
migration-lint: venv ## flag drop/rename migrations that are not a marked contract step (also in make test)
	$(PY) -m kit.migration_lint

# --- backup and restore --------------------------------------------------------
.PHONY: restore-drill
restore-drill: venv ## back up a seeded PostgreSQL, restore it on a fresh server, smoke-test the service; RTO/RPO
	$(PY) -m kit.restore_drill

.PHONY: restore-drill-large
restore-drill-large: venv ## the restore drill on 1M projects (minutes)
	$(PY) -m kit.restore_drill --projects 1000000

# --- checks ----------------------------------------------------------------
.PHONY: lint
lint: venv ## ruff, mypy and the layer contracts
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yaml

.PHONY: test
# Two workers, one test module each at a time (module fixtures stay in one process); every
# server the tests start listens on a free port, so the workers never share one.
PYTEST_WORKERS ?= 2
test: venv system-deps lint ## everything: lint, unit, integration, API, ops checks, short load gate
	.venv/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: chaos
chaos: venv system-deps ## faults under load (PostgreSQL/Redis/worker/API killed, webhook down, disk full, slow clients), long form; `make test` runs a short one
	CHAOS_PROFILE=full .venv/bin/pytest -p no:cacheprovider --no-cov tests/chaos $(CHAOS_ARGS)

.PHONY: image-test
image-test: venv ## build service/Dockerfile with podman (local debootstrap base) and run the image's checks (as root, minutes)
	$(PY) -m kit.image_test

.PHONY: format
format: venv
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

# --- SLOs, alerts, dashboards ------------------------------------------------
.PHONY: generate-alerts
generate-alerts: venv ## render rules, dashboards and load-test targets from alerts/slo.yaml
	$(PY) -m kit.generate

.PHONY: generate
generate: generate-alerts generate-k8s generate-settings-doc ## regenerate every committed artefact

.PHONY: generate-settings-doc
generate-settings-doc: venv ## rewrite the settings table in docs/service.md from the Settings model
	$(PY) -m kit.settings_doc

.PHONY: dashboard-previews
dashboard-previews: venv system-deps ## run the service under phased load with Prometheus (~4 min), draw the main panels to docs/dashboards/*.png
	$(PY) -m kit.dashboard_previews $(DASHBOARD_PREVIEWS_ARGS)

.PHONY: runbooks-check
runbooks-check: venv ## every command in runbooks/ against the repo (manifests, Makefile, parsers, flags, metrics)
	$(PY) -m kit.runbook_commands

.PHONY: alerts-check
alerts-check: venv ## promtool/amtool checks and the alert, dashboard and runbook tests
	promtool check rules alerts/generated/*.yaml
	amtool check-config alerts/alertmanager.yaml
	.venv/bin/pytest -p no:cacheprovider --no-cov tests/alerts tests/dashboards tests/runbooks

# --- Kubernetes manifests ----------------------------------------------------
.PHONY: generate-k8s
generate-k8s: venv generate-alerts ## write k8s/overlays/*, k8s/platform/gateway/gateway.yaml and each environment's PrometheusRule from config/environments.yaml and alerts/
	$(PY) -m kit.k8s_overlays

.PHONY: checkov-env
checkov-env: venv ## create the isolated checkov environment (.venv-checkov from tools/checkov.requirements.txt)
	$(PY) -c "from kit.checkov_scan import ensure_checkov; print(ensure_checkov())"

.PHONY: k8s-check
k8s-check: venv ## render every overlay and the Gateway; schema (k8s 1.30/1.32/1.34, Gateway API/cert-manager models), policy, edge wiring, checkov, promtool, freshness, negative tests
	@command -v kubectl >/dev/null || { echo "kubectl is missing: it provides kubectl kustomize"; exit 1; }
	@command -v promtool >/dev/null || { echo "promtool is missing: make system-deps (Debian package prometheus)"; exit 1; }
	.venv/bin/pytest -p no:cacheprovider --no-cov tests/k8s

# --- Pulumi (infra/) ------------------------------------------------------------
PR    ?=
IMAGE ?=

.PHONY: infra-check
infra-check: venv ## Pulumi program under mocks (dev, staging, prod, pr-123), policies, schemas, preview CLI
	.venv/bin/pytest -p no:cacheprovider --no-cov tests/infra

.PHONY: preview
preview: venv ## deploy pull request PR=<n> with IMAGE=<ref> as stack pr-<n> on the dev cluster (kit preview up)
	@[ -n "$(PR)" ] && [ -n "$(IMAGE)" ] || { echo "usage: make preview PR=<n> IMAGE=<ref>"; exit 2; }
	.venv/bin/kit preview up --pr $(PR) --image $(IMAGE)

.PHONY: preview-destroy
preview-destroy: venv ## destroy the preview of pull request PR=<n> and remove its stack (kit preview down)
	@[ -n "$(PR)" ] || { echo "usage: make preview-destroy PR=<n>"; exit 2; }
	.venv/bin/kit preview down --pr $(PR) --yes

.PHONY: preview-sweep
preview-sweep: venv ## destroy every preview past its expiry (kit preview sweep; stack output expiresAt)
	.venv/bin/kit preview sweep

# --- kit CLI and delivery pipeline -------------------------------------------
.PHONY: kit-check
kit-check: venv system-deps ## kit CLI, synthetic probe, delivery workflow: workflow schema + tests/cli (also in make test)
	.venv/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yaml
	.venv/bin/pytest -p no:cacheprovider --no-cov tests/cli

# --- load tests and benchmark -------------------------------------------------
HOST    ?=
SHAPE   ?= fixed
BASE    ?= main
BENCH_PACKAGES := wrk

.PHONY: loadtest
loadtest: venv system-deps ## gated Locust run: ENV=ci starts a local stack; ENV=staging HOST=https://... (SHAPE=fixed|step|smoke)
	$(PY) -m loadtests.run --env $(ENV) --shape $(SHAPE) $(if $(HOST),--host $(HOST)) $(LOADTEST_ARGS)

.PHONY: loadtest-compare
loadtest-compare: venv system-deps ## relative gate on a shared runner: head vs BASE=<git ref>, interleaved pairs, same data
	$(PY) -m loadtests.compare --base $(BASE) $(COMPARE_ARGS)

.PHONY: loadtest-calibrate
loadtest-calibrate: venv system-deps ## A/A: the head against itself, PAIRS=7 interleaved pairs; the spread that sets --max-ratio/--floor-ms
	$(PY) -m loadtests.compare --aa --pairs $(or $(PAIRS),7) --out reports/loadtest-calibrate $(COMPARE_ARGS)

.PHONY: gate-sim
gate-sim: venv ## the load gate's false-pass / false-fail rates at the CI run's sample counts (simulated)
	$(PY) -m loadtests.gate_sim $(GATE_SIM_ARGS)

.PHONY: bench-deps
bench-deps: ## apt-get install wrk (only the benchmark needs it)
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then echo "missing: $(BENCH_PACKAGES) (run as root or install it)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BENCH_PACKAGES) >/dev/null; }

.PHONY: bench
bench: venv system-deps bench-deps ## service vs bare FastAPI baselines, 10M scaling, start-up, RSS: one table of goals (BENCH_ARGS=--previous old.json)
	$(PY) -m loadtests.bench $(BENCH_ARGS)

.PHONY: bench-seed-large
bench-seed-large: venv ## seed a PostgreSQL cluster with 10M projects once, kept in reports/bench/pg-10m (make bench then measures on it)
	$(PY) -m loadtests.bench.large $(BENCH_SEED_ARGS)

.PHONY: bench-redis
bench-redis: venv system-deps ## Redis clients running the rate limiter's script on uvloop: calls/s and CPU per call, side by side
	$(PY) -m loadtests.bench.redis_clients $(BENCH_REDIS_ARGS)

.PHONY: bench-middleware
bench-middleware: venv bench-deps ## edge middleware (request id, access log, metrics) on vs off, side by side: req/s and overhead (target < 15 %)
	$(PY) -m service.bench.middleware_overhead $(BENCH_MIDDLEWARE_ARGS)

# --- security -------------------------------------------------------------------
SECURITY_TESTS := tests/security service/tests/api/test_attacks.py service/tests/api/test_security_review.py \
	service/tests/api/test_token_revocation.py service/tests/system/test_server_bounds.py \
	service/tests/unit/test_tokens_and_passwords.py

.PHONY: security
security: venv system-deps ## fuzz every role on SQLite + PostgreSQL (thousands of cases), attacks, review regressions, supply chain
	FUZZ_PROFILE=long .venv/bin/pytest -p no:cacheprovider --no-cov -s $(SECURITY_TESTS)
	$(PY) -m kit.supply_chain
