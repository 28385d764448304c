"""Serves the policy pack to the Pulumi CLI (`pulumi preview --policy-pack infra/policy`).

Constructing PolicyPack starts a gRPC server and blocks: only the CLI runs this file.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from infra.policy.policies import all_policies  # noqa: E402

PolicyPack(name="reference-platform", enforcement_level=EnforcementLevel.MANDATORY, policies=all_policies())
