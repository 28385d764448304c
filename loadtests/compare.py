"""Relative load test for shared CI runners: base vs head, interleaved, on the same data.

``python -m loadtests.compare --base origin/main`` (what ``make loadtest-compare BASE=...`` calls):

1. checks the base ref out into a temporary ``git worktree`` with its own venv (``uv sync``);
2. starts PostgreSQL and Redis once, migrates with the head (a superset of the base's schema)
   and seeds once;
3. runs ``--pairs`` pairs of short fixed-rate runs, alternating the order (B H, H B, B H, ...)
   so drift of a noisy runner hits both sides alike; each run starts its own API process of
   that tree on the same database, pinned to core 0, with Locust (the head's journeys) on core 1;
4. per endpoint, takes the head/base p95 ratio of each pair and flags a regression when the
   median ratio exceeds ``--max-ratio`` *and* the median p95 grew by more than ``--floor-ms``
   (the floor keeps a 2 -> 3 ms change on a fast endpoint from counting as +50 %) *and* the head
   was slower in so many pairs that a one-sided sign test rejects "no change" at 5 % (with 5
   pairs: all 5; a coin would do that 1 time in 32), or when the head's SLO error ratio (5xx and
   unanswered) exceeds ``--max-error-ratio`` while the base's does not.

Calibration: ``--aa`` runs the head against itself (same tree, same commit) for ``--pairs``
pairs and reports the A/A spread: per endpoint the pair ratios, the median-of-5 ratio and Δp95
that only 5 % of bootstrap sets of 5 pairs exceed, and how often the current policy flags a
regression that cannot exist. ``make loadtest-calibrate`` runs it; ``--rejudge DIR`` judges the
runs of an earlier invocation again, e.g. with other limits.

Exit codes as the gate: 0 no significant regression, 3 regression, 4 inconclusive or failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from kit.paths import ROOT
from loadtests import gate, machine, shapes, sli, stack, targets
from loadtests.gate import ExitCode, Verdict
from loadtests.runstats import EndpointStats, RunStats
from loadtests.seed import SeedSize

DEFAULT_OUT = ROOT / "reports" / "loadtest-compare"
RAW = "raw.json"  # what loadtests.run.run_locust writes per run
MIN_PAIRS = 5  # fewer and the sign test can never reach 5 % (3 pairs: 1 in 8 by chance)


def _slo_errors(endpoint: EndpointStats) -> int:
    """5xx and unanswered requests (Locust's failures include 4xx, which are not SLO errors)."""
    return endpoint.sli.errors if endpoint.sli is not None else endpoint.num_failures


def sign_test_p(slower: int, pairs: int) -> float:
    """One-sided sign test: chance of the head being slower in ``slower`` or more of ``pairs`` by luck."""
    return sli.sf(slower, pairs, 0.5)


@dataclass(frozen=True)
class ComparePolicy:
    max_ratio: float = 1.25  # head p95 / base p95, median over pairs
    floor_ms: float = 3.0  # and at least this much slower, in ms
    max_sign_p: float = 0.05  # and slower in enough pairs: one-sided sign-test p-value
    max_error_ratio: float = 0.005
    min_samples: int = 100  # per run and endpoint; fewer and the endpoint is not compared
    max_base_spread: float = 0.5  # base runs' p95 (max-min)/median beyond this: too noisy to judge


@dataclass(frozen=True)
class EndpointComparison:
    endpoint: str
    base_p95: list[float]
    head_p95: list[float]
    ratios: list[float]
    median_ratio: float
    delta_ms: float
    base_spread: float
    head_error_ratio: float
    base_error_ratio: float
    verdict: Verdict
    reason: str


@dataclass
class CompareResult:
    pairs: int
    endpoints: list[EndpointComparison] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # run-level reasons for "inconclusive"

    @property
    def verdict(self) -> Verdict:
        if self.problems or not self.endpoints:
            return Verdict.INCONCLUSIVE
        if any(e.verdict is Verdict.BREACH for e in self.endpoints):
            return Verdict.BREACH
        if any(e.verdict is Verdict.INCONCLUSIVE for e in self.endpoints):
            return Verdict.INCONCLUSIVE
        return Verdict.PASS

    @property
    def exit_code(self) -> ExitCode:
        return gate.EXIT_CODES[self.verdict]

    def sentence(self) -> str:
        """The plain-language verdict."""
        pairs = f"{self.pairs} interleaved pairs"
        if self.problems:
            return f"Inconclusive: {'; '.join(self.problems)}."
        if not self.endpoints:
            return f"Inconclusive: no endpoint had enough requests in every run of the {pairs} to compare."
        regressions = [e for e in self.endpoints if e.verdict is Verdict.BREACH]
        if regressions:
            worst = ", ".join(f"{e.endpoint} ({e.reason})" for e in regressions)
            return f"Regression: the head is significantly slower than the base on {worst}, over {pairs}."
        noisy = [e.endpoint for e in self.endpoints if e.verdict is Verdict.INCONCLUSIVE]
        if noisy:
            return f"Inconclusive: the base runs disagree too much to judge {', '.join(noisy)}."
        fastest = min(self.endpoints, key=lambda e: e.median_ratio)
        slowest = max(self.endpoints, key=lambda e: e.median_ratio)
        text = (
            f"No significant regression over {pairs}: head p95 ranges from {_pct(fastest.median_ratio)} "
            f"({fastest.endpoint}) to {_pct(slowest.median_ratio)} ({slowest.endpoint}) than the base."
        )
        noisiest = max(self.endpoints, key=lambda e: e.base_spread)
        if noisiest.base_spread > ComparePolicy.max_base_spread:
            text += (
                f" The base runs varied by up to {noisiest.base_spread:.0%} ({noisiest.endpoint}): "
                "the runner was noisy, so treat the sizes of the changes as rough."
            )
        return text


def _pct(ratio: float) -> str:
    change = (ratio - 1) * 100
    return (
        f"{abs(change):.0f} % {'slower' if change > 0 else 'faster'}" if abs(change) >= 0.5 else "no slower"
    )


def compare(base: list[RunStats], head: list[RunStats], policy: ComparePolicy) -> CompareResult:
    """Judge paired runs (``base[i]`` and ``head[i]`` ran back to back)."""
    if len(base) != len(head) or not base:
        raise ValueError("compare needs the same, non-zero number of base and head runs")
    result = CompareResult(pairs=len(base))
    saturated = sum(r.cpu_warning for r in [*base, *head])
    if saturated:
        result.problems.append(f"the load generator saturated its CPU in {saturated} run(s)")
    keys = sorted({e.key for r in [*base, *head] for e in r.endpoints})
    for key in keys:
        runs = [(b.endpoint(key), h.endpoint(key)) for b, h in zip(base, head, strict=True)]
        if any(
            b is None or h is None or min(b.num_requests, h.num_requests) < policy.min_samples
            for b, h in runs
        ):
            result.skipped.append(key)
            continue
        pairs = [(b, h) for b, h in runs if b is not None and h is not None]
        base_p95 = [b.percentile(0.95) or 0.0 for b, _ in pairs]
        head_p95 = [h.percentile(0.95) or 0.0 for _, h in pairs]
        ratios = [h / b if b > 0 else 1.0 for b, h in zip(base_p95, head_p95, strict=True)]
        median_ratio = statistics.median(ratios)
        delta = statistics.median(head_p95) - statistics.median(base_p95)
        base_median = statistics.median(base_p95)
        spread = (max(base_p95) - min(base_p95)) / base_median if base_median > 0 else 0.0
        head_errors = sum(_slo_errors(h) for _, h in pairs) / sum(h.num_requests for _, h in pairs)
        base_errors = sum(_slo_errors(b) for b, _ in pairs) / sum(b.num_requests for b, _ in pairs)
        slower = sum(r > 1 for r in ratios)
        sign_p = sign_test_p(slower, len(ratios))
        if head_errors > policy.max_error_ratio >= base_errors:
            verdict, reason = Verdict.BREACH, f"errors {head_errors:.2%} vs {base_errors:.2%}"
        elif median_ratio > policy.max_ratio and delta > policy.floor_ms and sign_p <= policy.max_sign_p:
            verdict, reason = (
                Verdict.BREACH,
                f"p95 x{median_ratio:.2f}, +{delta:.1f} ms, slower in {slower} of {len(ratios)} pairs",
            )
        elif spread > policy.max_base_spread and median_ratio > policy.max_ratio:
            verdict, reason = Verdict.INCONCLUSIVE, f"base p95 spread {spread:.0%}"
        else:
            verdict, reason = Verdict.PASS, f"p95 x{median_ratio:.2f}, {delta:+.1f} ms"
        result.endpoints.append(
            EndpointComparison(
                key,
                base_p95,
                head_p95,
                ratios,
                median_ratio,
                delta,
                spread,
                head_errors,
                base_errors,
                verdict,
                reason,
            )
        )
    return result


def markdown(result: CompareResult, base_ref: str, policy: ComparePolicy) -> str:
    lines = [
        f"## Load-test comparison: head vs `{base_ref}`: {result.verdict.value.upper()}",
        "",
        result.sentence(),
        "",
        f"Regression = median p95 ratio > {policy.max_ratio}, median p95 +{policy.floor_ms} ms or more and "
        f"slower in enough pairs (sign test p <= {policy.max_sign_p}), or head 5xx/unanswered > "
        f"{policy.max_error_ratio:.1%}.",
        "",
        "| endpoint | base p95 ms (per run) | head p95 ms (per run) | median ratio | Δ p95 ms | base spread "
        "| verdict |",
        "|---|---|---|--:|--:|--:|---|",
    ]
    for e in result.endpoints:
        lines.append(
            f"| `{e.endpoint}` | {', '.join(f'{v:.3g}' for v in e.base_p95)} | "
            f"{', '.join(f'{v:.3g}' for v in e.head_p95)} | {e.median_ratio:.2f} | {e.delta_ms:+.1f} | "
            f"{e.base_spread:.0%} | {e.verdict.value} |"
        )
    if result.skipped:
        lines += [
            "",
            f"Not compared (fewer than {policy.min_samples} requests per run): "
            + ", ".join(f"`{k}`" for k in result.skipped),
        ]
    return "\n".join(lines) + "\n"


class CompareError(RuntimeError):
    pass


def _git(*args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603, S607
    if check and done.returncode != 0:
        raise CompareError(f"git {' '.join(args)}: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout.strip()


@contextlib.contextmanager
def base_tree(ref: str) -> Iterator[tuple[Path, Path]]:
    """A worktree of ``ref`` with its own venv from its own lock; yields (tree, python)."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    workdir = Path(tempfile.mkdtemp(prefix="loadtest-base-"))
    tree = workdir / "tree"
    _git("worktree", "add", "--detach", str(tree), commit)
    try:
        if not (tree / "service" / "src" / "app" / "main.py").exists():
            raise CompareError(f"{ref} ({commit[:10]}) has no service to load (service/src/app/main.py)")
        uv = shutil.which("uv") or str(ROOT / ".venv-uv" / "bin" / "uv")
        done = subprocess.run(  # noqa: S603 - fixed argv
            [uv, "sync", "--locked", "--no-default-groups", "--quiet"],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise CompareError(f"uv sync of {ref} failed: {done.stderr.strip().splitlines()[-1:]}")
        yield tree, tree / ".venv" / "bin" / "python"
    finally:
        _git("worktree", "remove", "--force", str(tree), check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def run(
    base_ref: str | None, pairs: int, plan: shapes.Plan, size: SeedSize, out: Path
) -> tuple[list[RunStats], ...]:
    """Interleaved pairs of base and head runs; ``base_ref=None`` runs the head against itself (A/A)."""
    from loadtests.run import run_locust

    base_runs: list[RunStats] = []
    head_runs: list[RunStats] = []
    tree_of_base = base_tree(base_ref) if base_ref else contextlib.nullcontext((ROOT, stack.VENV_PYTHON))
    with tree_of_base as (tree, python), stack.backing_services(size) as backing:
        sides = {"base": (tree, python, base_runs), "head": (ROOT, stack.VENV_PYTHON, head_runs)}
        for pair in range(pairs):
            order = ("base", "head") if pair % 2 == 0 else ("head", "base")
            for side in order:
                side_tree, side_python, runs = sides[side]
                run_dir = out / f"{pair + 1}-{side}"
                run_dir.mkdir(parents=True, exist_ok=True)
                with (
                    stack.service(
                        backing, run_dir / "logs", python=side_python, tree=side_tree, cpu=0
                    ) as svc,
                    machine.CpuMeter() as meter,
                ):
                    stats = run_locust(svc.base_url, plan, run_dir, size, cpu=1)
                runs.append(replace(stats, foreign_cpu_cores=meter.foreign_cores))
                p95 = stats.endpoint(f"GET {shapes.PROJECTS}")
                print(
                    f"pair {pair + 1} {side}: {stats.total_requests} requests, list p95 "
                    f"{(p95.percentile(0.95) if p95 else None)} ms",
                    file=sys.stderr,
                )
    return base_runs, head_runs


@dataclass(frozen=True)
class EndpointSpread:
    """A/A figures of one endpoint: how far two runs of the same code drift apart."""

    endpoint: str
    ratios: list[float]  # per pair, B/A p95
    deltas_ms: list[float]  # per pair, B - A p95
    ratio_95: float  # the median-of-5 ratio that only 5 % of bootstrap sets of 5 pairs exceed
    delta_95_ms: float  # the same for the median Δp95
    false_positive_share: float  # bootstrap sets the policy would call a regression


@dataclass
class Calibration:
    pairs: int
    subsets: int  # bootstrap sets judged
    endpoints: list[EndpointSpread] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    foreign_cpu_cores: list[float] = field(default_factory=list)  # per run: the neighbours' load

    @property
    def suggested_max_ratio(self) -> float | None:
        """The largest 95th-percentile median ratio, rounded up to 0.05."""
        if not self.endpoints:
            return None
        return math.ceil(max(e.ratio_95 for e in self.endpoints) * 20 - 1e-9) / 20

    @property
    def suggested_floor_ms(self) -> float | None:
        if not self.endpoints:
            return None
        return math.ceil(max(e.delta_95_ms for e in self.endpoints) * 2 - 1e-9) / 2


def _quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


RESAMPLES = 2000  # bootstrap draws of MIN_PAIRS pairs in a calibration
CALIBRATION_SEED = 20261202


def calibrate(
    a_runs: list[RunStats], b_runs: list[RunStats], policy: ComparePolicy, resamples: int = RESAMPLES
) -> Calibration:
    """A/A: ``resamples`` bootstrap sets of 5 pairs (drawn with replacement), each judged as compare()
    would; any regression found is a false positive. Seeded, so a calibration can be re-judged."""
    if len(a_runs) != len(b_runs) or len(a_runs) < MIN_PAIRS:
        raise ValueError(f"calibration needs the same number of A and B runs, at least {MIN_PAIRS}")
    full = compare(a_runs, b_runs, policy)
    result = Calibration(
        len(a_runs),
        resamples,
        skipped=list(full.skipped),
        foreign_cpu_cores=[
            r.foreign_cpu_cores for r in [*a_runs, *b_runs] if r.foreign_cpu_cores is not None
        ],
    )
    draw = random.Random(CALIBRATION_SEED)
    flagged: dict[str, int] = {}
    medians: dict[str, list[tuple[float, float]]] = {}
    for _ in range(resamples):
        pick = [draw.randrange(len(a_runs)) for _ in range(MIN_PAIRS)]
        judged = compare([a_runs[i] for i in pick], [b_runs[i] for i in pick], policy)
        for e in judged.endpoints:
            flagged[e.endpoint] = flagged.get(e.endpoint, 0) + (e.verdict is Verdict.BREACH)
            medians.setdefault(e.endpoint, []).append((e.median_ratio, e.delta_ms))
    for e in full.endpoints:
        pairs = medians.get(e.endpoint, [])
        if not pairs:
            continue
        result.endpoints.append(
            EndpointSpread(
                e.endpoint,
                e.ratios,
                [h - b for b, h in zip(e.base_p95, e.head_p95, strict=True)],
                _quantile([r for r, _ in pairs], 0.95),
                _quantile([d for _, d in pairs], 0.95),
                flagged.get(e.endpoint, 0) / resamples,
            )
        )
    return result


def load_pairs(directory: Path) -> tuple[list[RunStats], list[RunStats]]:
    """The runs of an earlier comparison or calibration (``<pair>-base/raw.json``, ``<pair>-head/...``)."""
    pairs = sorted(int(p.name.split("-")[0]) for p in directory.glob("*-base") if (p / RAW).exists())
    if not pairs:
        raise ValueError(f"{directory}: no <pair>-base/{RAW} runs to judge")
    return (
        [RunStats.load(directory / f"{n}-base" / RAW) for n in pairs],
        [RunStats.load(directory / f"{n}-head" / RAW) for n in pairs],
    )


def calibration_markdown(result: Calibration, policy: ComparePolicy) -> str:
    lines = [
        f"## Relative mode calibration: A/A, {result.pairs} interleaved pairs of the same commit",
        "",
        f"{result.subsets} bootstrap sets of {MIN_PAIRS} pairs (drawn with replacement) judged as "
        f"`make loadtest-compare` would with max ratio {policy.max_ratio}, floor {policy.floor_ms} ms and "
        "the sign test; any regression found is a false positive.",
        "",
        "| endpoint | B/A p95 ratio per pair | median-of-5 ratio, 95th pct | median-of-5 Δp95 ms, 95th pct "
        "| false positives |",
        "|---|---|--:|--:|--:|",
    ]
    for e in result.endpoints:
        lines.append(
            f"| `{e.endpoint}` | {', '.join(f'{r:.2f}' for r in e.ratios)} | {e.ratio_95:.2f} | "
            f"{e.delta_95_ms:+.1f} | {e.false_positive_share:.0%} |"
        )
    if result.endpoints:
        lines += [
            "",
            f"Suggested: `--max-ratio {result.suggested_max_ratio}` and "
            f"`--floor-ms {result.suggested_floor_ms}` "
            "(the largest 95th percentiles above): below them, two runs of the same code differ that much "
            "by chance on this runner.",
        ]
    if result.foreign_cpu_cores:
        load = sorted(result.foreign_cpu_cores)
        lines += [
            "",
            f"Other processes used {statistics.median(load):.2f} CPU cores (median; up to {load[-1]:.2f}) "
            "during the runs: the figures hold for a runner that busy.",
        ]
    if result.skipped:
        lines += [
            "",
            "Not calibrated (too few requests per run): " + ", ".join(f"`{k}`" for k in result.skipped),
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.compare", description=__doc__.splitlines()[0])
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--base", help="git ref of the base (e.g. origin/main, HEAD~1)")
    side.add_argument("--aa", action="store_true", help="calibrate: run the head against itself (A/A)")
    parser.add_argument(
        "--pairs", type=int, default=MIN_PAIRS, help=f"interleaved pairs (at least {MIN_PAIRS})"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="journey req/s (default: twice the ci gate's rate, for more samples)",
    )
    parser.add_argument("--max-ratio", type=float, default=ComparePolicy.max_ratio)
    parser.add_argument("--floor-ms", type=float, default=ComparePolicy.floor_ms)
    parser.add_argument("--max-error-ratio", type=float, default=ComparePolicy.max_error_ratio)
    parser.add_argument("--min-samples", type=int, default=ComparePolicy.min_samples)
    parser.add_argument("--projects", type=int, default=20_000)
    parser.add_argument("--owners", type=int, default=200)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--rejudge",
        type=Path,
        default=None,
        metavar="DIR",
        help="judge the runs an earlier invocation left in DIR (its --out) instead of running",
    )
    args = parser.parse_args(argv)
    if args.pairs < MIN_PAIRS:
        parser.error(f"--pairs must be at least {MIN_PAIRS}: fewer cannot separate a change from noise")
    policy = ComparePolicy(
        max_ratio=args.max_ratio,
        floor_ms=args.floor_ms,
        max_error_ratio=args.max_error_ratio,
        min_samples=args.min_samples,
    )
    try:
        ci = targets.load("ci")
        rate = args.rate or 2 * gate.rate_for_targets(ci)
        plan = replace(shapes.fixed(rate, args.duration, args.warmup), latency_bounds_ms=ci.latency_bounds_ms)
        args.out.mkdir(parents=True, exist_ok=True)
        if args.rejudge:  # the runs of an earlier invocation, judged again (e.g. with other limits)
            base_runs, head_runs = load_pairs(args.rejudge)
        else:
            base_runs, head_runs = run(
                None if args.aa else args.base,
                args.pairs,
                plan,
                SeedSize(args.projects, args.owners),
                args.out,
            )
        if args.aa:
            calibration = calibrate(base_runs, head_runs, policy)
        else:
            result = compare(base_runs, head_runs, policy)
    except (CompareError, stack.StackError, targets.TargetsError, RuntimeError, ValueError) as exc:
        print(f"load-test comparison failed: {exc}", file=sys.stderr)
        return int(ExitCode.INCONCLUSIVE)
    if args.aa:
        text = calibration_markdown(calibration, policy)
        (args.out / "calibrate.md").write_text(text)
        (args.out / "calibrate.json").write_text(
            json.dumps(
                {
                    "pairs": calibration.pairs,
                    "subsets": calibration.subsets,
                    "policy": asdict(policy),
                    "suggested_max_ratio": calibration.suggested_max_ratio,
                    "suggested_floor_ms": calibration.suggested_floor_ms,
                    "endpoints": [asdict(e) for e in calibration.endpoints],
                    "skipped": calibration.skipped,
                },
                indent=2,
            )
            + "\n"
        )
        print(text)
        return 0
    text = markdown(result, args.base, policy)
    (args.out / "compare.md").write_text(text)
    (args.out / "compare.json").write_text(
        json.dumps(
            {
                "base": args.base,
                "verdict": result.verdict.value,
                "sentence": result.sentence(),
                "policy": asdict(policy),
                "skipped": result.skipped,
                "problems": result.problems,
                "endpoints": [{**asdict(e), "verdict": e.verdict.value} for e in result.endpoints],
            },
            indent=2,
        )
        + "\n"
    )
    print(text)
    return int(result.exit_code)


if __name__ == "__main__":
    sys.exit(main())
