"""Pull-request previews with the Pulumi CLI: open, close, sweep the expired.

    python -m infra.previews up --pr 123 --image ghcr.io/example/reference-service@sha256:...
    python -m infra.previews destroy --pr 123
    python -m infra.previews sweep            # destroy every preview past its expiry

`make preview PR=<n> IMAGE=<ref>` and `make preview-destroy PR=<n>` call the first two. A preview
is stack pr-<n>, created from the template stack `pr` (Pulumi.pr.yaml); its expiry is the stack
output `expiresAt` (unix seconds, also the label preview.kit/expires-at on its objects).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from infra.stack_config import PREVIEW_STACK, PROJECT, image_problem
from kit import environments, k8s_overlays
from kit.paths import K8S, ROOT

TEMPLATE_STACK = "pr"
POLICY_PACK = ROOT / "infra" / "policy"


class PreviewError(Exception):
    """A one-line, user-facing failure (printed without a traceback; exit status 1)."""


def stack_name(pull_request: int) -> str:
    if pull_request < 1:
        raise PreviewError(f"pull request number must be positive, got {pull_request}")
    return f"pr-{pull_request}"


class PulumiCli:
    """The few `pulumi` commands the previews need, run from the project directory."""

    def __init__(self, cwd: Path = ROOT) -> None:
        executable = shutil.which("pulumi")
        if executable is None:
            raise PreviewError(
                "the pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/iac/download-install/)"
            )
        self.executable = executable
        self.cwd = cwd

    def run(self, *args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: S603 (a fixed executable and our own arguments)
            [self.executable, *args, "--non-interactive"],
            cwd=self.cwd,
            text=True,
            capture_output=capture,
            check=False,
        )
        if check and result.returncode != 0:
            detail = (result.stderr or "").strip().splitlines()
            reason = f": {detail[-1]}" if detail else ""
            raise PreviewError(f"pulumi {' '.join(args)} failed (exit {result.returncode}){reason}")
        return result

    def json(self, *args: str) -> object:
        output = self.run(*args, "--json", capture=True).stdout
        try:
            return json.loads(output or "null")
        except json.JSONDecodeError:
            raise PreviewError(f"pulumi {' '.join(args)} --json printed no JSON") from None


def _checked_image(image: str) -> str:
    problem = image_problem(image)
    if problem:
        raise PreviewError(f"--image: {problem}")
    # The preview overlay runs a pull request's build by digest, from the configured repository.
    try:
        k8s_overlays.parse_image(image, environments.load().image_repository)
    except k8s_overlays.OverlayError as error:
        raise PreviewError(f"--image: {error}") from None
    return image


def open_preview(cli: PulumiCli, pull_request: int, image: str, k8s_dir: Path = K8S) -> str:
    """Create or update stack pr-<n> with `image`; returns the preview's URL."""
    stack = stack_name(pull_request)
    image = _checked_image(image)
    if cli.run("stack", "select", stack, check=False, capture=True).returncode != 0:
        cli.run("stack", "init", stack, "--copy-config-from", TEMPLATE_STACK)
    cli.run("config", "set", f"{PROJECT}:image", image, "--stack", stack)
    # The preview overlay is rendered for this pull request (namespace, host), deployed, then the
    # committed placeholder (pull request 0) is put back.
    overlay = k8s_dir / "overlays" / "preview"
    committed = {path: path.read_text() for path in overlay.iterdir() if path.is_file()}
    try:
        k8s_overlays.render_preview(pull_request, k8s_dir, image)
        cli.run("up", "--yes", "--stack", stack, "--policy-pack", str(POLICY_PACK))
    finally:
        for path, text in committed.items():
            path.write_text(text)
    url = cli.json("stack", "output", "serviceUrl", "--stack", stack)
    return str(url)


def close_preview(cli: PulumiCli, pull_request: int) -> None:
    """Destroy everything of stack pr-<n>, then remove the stack itself."""
    stack = stack_name(pull_request)
    cli.run("destroy", "--yes", "--stack", stack)
    cli.run("stack", "rm", stack, "--yes")


def preview_stacks(cli: PulumiCli) -> list[int]:
    listed = cli.json("stack", "ls")
    numbers = []
    for entry in listed if isinstance(listed, list) else []:
        name = str(entry.get("name", "")) if isinstance(entry, dict) else ""
        match = PREVIEW_STACK.match(name.rsplit("/", 1)[-1])
        if match:
            numbers.append(int(match["number"]))
    return sorted(numbers)


def sweep(cli: PulumiCli, now: float, dry_run: bool = False) -> list[int]:
    """Destroy every preview whose `expiresAt` has passed; returns their pull request numbers."""
    swept = []
    for number in preview_stacks(cli):
        stack = stack_name(number)
        result = cli.run(
            "stack", "output", "expiresAt", "--stack", stack, "--json", check=False, capture=True
        )
        try:
            expires_at = int(json.loads(result.stdout)) if result.returncode == 0 else None
        except (TypeError, ValueError):
            expires_at = None
        if expires_at is None:
            print(f"{stack}: no expiresAt output (never deployed?): left alone")
            continue
        if expires_at > now:
            print(f"{stack}: expires in {int(expires_at - now) // 60} min: kept")
            continue
        action = "would destroy" if dry_run else "destroying"
        print(f"{stack}: expired {int(now - expires_at) // 60} min ago: {action}")
        if not dry_run:
            close_preview(cli, number)
        swept.append(number)
    return swept


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.previews", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="create or update the preview of a pull request")
    up.add_argument("--pr", type=int, required=True, help="pull request number")
    up.add_argument("--image", required=True, help="image to run: registry/repo:tag or @sha256:digest")
    down = commands.add_parser("destroy", help="destroy a preview and remove its stack")
    down.add_argument("--pr", type=int, required=True, help="pull request number")
    sweeper = commands.add_parser("sweep", help="destroy every preview past its expiry")
    sweeper.add_argument("--dry-run", action="store_true", help="list what would be destroyed")
    options = parser.parse_args(argv)
    try:
        cli = PulumiCli()
        if options.command == "up":
            print(f"preview of pull request {options.pr}: {open_preview(cli, options.pr, options.image)}")
        elif options.command == "destroy":
            close_preview(cli, options.pr)
            print(f"preview of pull request {options.pr} destroyed, stack {stack_name(options.pr)} removed")
        else:
            swept = sweep(cli, time.time(), options.dry_run)
            print(f"{len(swept)} expired preview(s) {'found' if options.dry_run else 'destroyed'}")
    except PreviewError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
