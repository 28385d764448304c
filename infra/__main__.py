"""`pulumi up` runs this file (Pulumi.yaml: main: infra/)."""

import sys
from pathlib import Path

# The language host runs this file as a script: make the repository root (infra/, kit/) importable.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra.program import main  # noqa: E402

main()
