"""Ask this container's own health or metrics endpoint and print what it answers, 503 bodies included.

For `kubectl exec` in an incident (the image has no curl):

    python -m app.probe ready            # /health/ready on 127.0.0.1:8000: status and the body
    python -m app.probe live
    python -m app.probe metrics --port 9100 --grep outbox_

Prints `<status> <body>` (only the matching lines for `metrics --grep`); exit 0 on 2xx, 1 otherwise
(connection refused or timeout included, with a one-line reason).
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

PATHS = {"live": "/health/live", "ready": "/health/ready", "metrics": "/metrics"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.probe", description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", choices=sorted(PATHS), help="which endpoint to ask")
    parser.add_argument("--port", type=int, default=8000, help="8000: the API; 9100: the worker's metrics")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds")
    parser.add_argument("--grep", default=None, help="metrics: print only lines containing this text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url = f"http://{args.host}:{args.port}{PATHS[args.endpoint]}"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            status, body = response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:  # 503 from readiness: its body names the reason
        status, body = error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        print(f"probe: {url}: no answer: {reason}", file=sys.stderr)
        return 1
    if args.grep is not None:
        body = "\n".join(line for line in body.splitlines() if args.grep in line)
    print(f"{status} {body.strip()}")
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    raise SystemExit(main())
