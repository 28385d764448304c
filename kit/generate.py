"""Render every artefact derived from alerts/slo.yaml (``make generate-alerts``).

    python -m kit.generate            write the committed outputs
    python -m kit.generate --check    exit 1 listing stale outputs (what the freshness test runs)
    python -m kit.generate --environment staging --out DIR
                                      render one environment's rules and the dashboards into DIR

Outputs: alerts/generated/rules.yaml (the alerting environment, prod) and rules-<env>.yaml for
every other environment that runs in a cluster, dashboards/*.json, loadtests/targets.json.
A bad spec prints one line (``error: <key>: <problem>``) and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kit import alerts_gen, dashboards_gen, render, slo
from kit.paths import ROOT

TARGETS_FILE = ROOT / "loadtests" / "targets.json"


def render_all(spec: slo.SloSpec, environment: str | None = None, out: Path | None = None) -> dict[Path, str]:
    """Every output file and its exact content, rendered in memory (nothing is written).

    ``out`` puts one environment's rules (default: the alerting environment) and the
    dashboards into one directory instead of their committed places; without it, every
    deployed environment's rules and the load-test targets (all environments) are rendered.
    """
    chosen = environment or spec.alerting_environment
    spec.objectives(chosen)  # unknown environment -> SpecError
    if out is not None:
        outputs = {out / "rules.yaml": alerts_gen.render_rules_yaml(spec, alerts_gen.RenderOptions(chosen))}
    else:
        outputs = {
            alerts_gen.rules_file(spec, env): alerts_gen.render_rules_yaml(
                spec, alerts_gen.RenderOptions(env)
            )
            for env in alerts_gen.deployed_environments()
        }
        outputs[TARGETS_FILE] = render.dump_json(slo.load_targets_document(spec))
    for uid, document in dashboards_gen.render_dashboards(spec, chosen).items():
        outputs[(out or dashboards_gen.DASHBOARDS_DIR) / f"{uid}.json"] = render.dump_json(document)
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=slo.SPEC_FILE, help="SLO spec (default alerts/slo.yaml)")
    render.add_check_flag(parser)
    parser.add_argument(
        "--environment", help="objectives to render (default: the spec's alerting_environment)"
    )
    parser.add_argument(
        "--out", type=Path, help="write rules and dashboards here instead of the committed files"
    )
    args = parser.parse_args(argv)
    if args.environment and not args.out:
        parser.error("--environment needs --out: the committed files carry the alerting environment")
    try:
        spec = slo.load(args.spec)
        outputs = render_all(spec, args.environment, args.out)
    except slo.SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return render.check_or_write(outputs, check=args.check, remedy="make generate")


if __name__ == "__main__":
    sys.exit(main())
