"""Run a gated load test: ``python -m loadtests.run --env ci`` (what ``make loadtest`` calls).

With a local environment (``ci``) and no ``--host``, it starts the stack itself (PostgreSQL,
Redis, the API with production server settings and the worker, on loopback), seeds it in bulk,
runs Locust headless in a subprocess pinned to another core than the API, judges the figures
against the SLO targets and stops everything. With ``--host`` (or a deployed environment's
host from ``config/environments.yaml``) it runs against that URL; seed its database first with
``python -m loadtests.seed``.

Exit codes: 0 pass, 3 threshold breach, 4 inconclusive or the run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from kit import environments
from kit.paths import LOADTESTS, ROOT
from loadtests import gate, machine, report, shapes, stack, targets
from loadtests.runstats import RunStats
from loadtests.seed import SeedSize

LOCUST = ROOT / ".venv" / "bin" / "locust"
LOCUSTFILE = LOADTESTS / "locustfile.py"
DEFAULT_OUT = ROOT / "reports" / "loadtest"
RAW_JSON = "raw.json"


class RunError(RuntimeError):
    """The run could not produce figures (stack or Locust failed); exits as inconclusive."""


@dataclass(frozen=True)
class Options:
    environment: str
    host: str | None
    shape: shapes.ShapeKind
    short: bool
    rate: float | None
    duration: float | None
    warmup: float | None
    out: Path
    size: SeedSize
    evaluate: Path | None = None


def build_plan(options: Options, env_targets: targets.EnvironmentTargets) -> shapes.Plan:
    rate = options.rate or gate.rate_for_targets(env_targets)
    warmup = options.warmup if options.warmup is not None else (5.0 if options.short else 10.0)
    if options.shape == "smoke":
        plan = shapes.smoke(options.duration or 10.0, rate)
    elif options.shape == "step":
        # From the gate's rate up to 8x: on the ci runner this passes the knee.
        steps = 4 if options.short else 8
        step_seconds = options.duration or (10.0 if options.short else 20.0)
        plan = shapes.step(rate, rate, steps, step_seconds, warmup)
    else:
        plan = shapes.fixed(rate, options.duration or (25.0 if options.short else 120.0), warmup)
    # The locustfile counts each class's latency threshold exactly (see shapes.Plan).
    return replace(plan, latency_bounds_ms=env_targets.latency_bounds_ms)


def policy_for(options: Options) -> gate.Policy:
    if options.short and options.shape == "fixed":
        return gate.SHORT
    return gate.POLICIES[options.shape]


def run_locust(host: str, plan: shapes.Plan, out: Path, size: SeedSize, cpu: int | None) -> RunStats:
    """Locust headless in a subprocess (it monkey-patches the interpreter with gevent)."""
    raw = out / RAW_JSON
    raw.unlink(missing_ok=True)
    env = {
        **os.environ,
        "LOADTEST_PLAN": json.dumps(plan.to_json()),
        "LOADTEST_RAW": str(raw),
        "LOADTEST_OWNERS": str(size.owners),
        "LOADTEST_MANAGERS": str(size.managers),
    }
    argv = [
        *stack.pinning(cpu),
        str(LOCUST),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--html",
        str(out / report.HTML_REPORT),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "5",
    ]
    log = out / "locust.log"
    try:
        with log.open("wb") as log_file:
            done = subprocess.run(  # noqa: S603 - fixed argv
                argv,
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=plan.duration + 120,
                check=False,
            )
    except subprocess.TimeoutExpired:
        raise RunError(f"Locust did not finish within {plan.duration + 120:.0f}s (see {log})") from None
    if done.returncode != 0 or not raw.exists():
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise RunError(f"Locust exited with {done.returncode} and no figures: {tail}")
    try:
        return RunStats.load(raw)
    except ValueError as exc:
        raise RunError(str(exc)) from None


@contextlib.contextmanager
def target_host(options: Options, env: environments.Environment) -> Iterator[tuple[str, int | None]]:
    """The URL to load, and the core Locust should use (when the API is pinned to the other)."""
    if options.host:
        yield options.host.rstrip("/"), None
        return
    if env.base_url:
        yield env.base_url, None
        return
    if not env.local:
        raise RunError(f"environment {env.name!r} has no host in config/environments.yaml; pass HOST=")
    with (
        stack.backing_services(options.size) as backing,
        stack.service(backing, options.out / "logs", cpu=0) as service,
    ):
        yield service.base_url, 1


def judge(options: Options, stats: RunStats, env_targets: targets.EnvironmentTargets) -> gate.GateResult:
    result = gate.evaluate(stats, env_targets, policy_for(options))
    report.write_all(options.out, stats, env_targets, result)
    print(report.markdown_table(stats, env_targets, result))
    if stats.plan.kind == "step":
        print(report.capacity_table(stats))
    return result


def run(options: Options) -> gate.GateResult:
    env = environments.load().get(options.environment)
    env_targets = targets.load(options.environment)
    options.out.mkdir(parents=True, exist_ok=True)
    if options.evaluate:  # figures of a run made elsewhere (e.g. Locust's distributed mode)
        stats = RunStats.load(options.evaluate)
        return judge(replace(options, shape=stats.plan.kind), stats, env_targets)
    plan = build_plan(options, env_targets)
    print(
        f"load test {options.environment}: shape {plan.kind}, ~{plan.steps[0].rate_rps:.0f} req/s, "
        f"{plan.peak_users} users, {plan.duration:.0f}s ({plan.warmup_seconds:.0f}s warm-up)",
        file=sys.stderr,
    )
    # The meter stops before the stack does, so the API's and the databases' CPU counts as ours.
    with target_host(options, env) as (host, cpu), machine.CpuMeter() as meter:
        stats = run_locust(host, plan, options.out, options.size, cpu)
    return judge(options, replace(stats, foreign_cpu_cores=meter.foreign_cores), env_targets)


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m loadtests.run", description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="ci", help="environment in config/environments.yaml (default ci)")
    parser.add_argument("--host", default=None, help="URL to load instead of the environment's own")
    parser.add_argument("--shape", choices=shapes.SHAPES, default="fixed")
    parser.add_argument("--short", action="store_true", help="the short form run by make test")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="journey req/s (default: derived from the SLO throughput targets)",
    )
    parser.add_argument("--duration", type=float, default=None, help="measured seconds (per step for step)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds excluded from the figures")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--evaluate",
        type=Path,
        default=None,
        metavar="RAW_JSON",
        help="judge the raw.json of a run made elsewhere (distributed mode) instead of running",
    )
    parser.add_argument("--projects", type=int, default=None)
    parser.add_argument("--owners", type=int, default=None)
    parser.add_argument("--managers", type=int, default=SeedSize.managers)
    args = parser.parse_args(argv)
    # The short form seeds 10k projects over 100 owners: still 100 projects (5 pages) per owner.
    size = SeedSize(
        args.projects or (10_000 if args.short else SeedSize.projects),
        args.owners or (100 if args.short else SeedSize.owners),
        args.managers,
    )
    return Options(
        args.env,
        args.host,
        args.shape,
        args.short,
        args.rate,
        args.duration,
        args.warmup,
        args.out,
        size,
        args.evaluate,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        result = run(options)
    except (RunError, stack.StackError, targets.TargetsError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"load test failed: {message}", file=sys.stderr)
        return int(gate.ExitCode.INCONCLUSIVE)
    print(result.summary())
    print(
        f"reports in {options.out}: {report.HTML_REPORT}, {report.SUMMARY_JSON}, {report.JUNIT_XML}, "
        f"{report.SUMMARY_MD}, {report.LATENCY_PNG}"
    )
    return int(result.exit_code)


if __name__ == "__main__":
    sys.exit(main())
