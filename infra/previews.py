"""Pull-request previews: stacks pr-<n> driven through the `pulumi` CLI (open, close, list, sweep).

The one implementation behind `kit preview up|down|list|sweep` (kit/cli/preview.py, a thin front
end) and `make preview`, `make preview-destroy`, `make preview-sweep` (which call kit).

- open:  stack pr-<n> (created from the template stack `pr`, Pulumi.pr.yaml, when new), the
         program's `reference-platform:image` set to the pull request's build by digest, the
         `preview` overlay rendered for the pull request (namespace, host, image) for the length
         of `pulumi up --policy-pack infra/policy`, then the committed placeholder put back.
- close: `pulumi destroy`, then `pulumi stack rm`.
- list:  every pr-<n> stack with the outputs the program exports: `createdAt` (first deployment,
         kept in its state) and `expiresAt` (last deployment + preview_ttl_hours from
         config/environments.yaml; also the preview.kit/expires-at label on its objects).
- sweep: close every preview whose `expiresAt` has passed.

The CLI rather than the Automation API: the Automation API drives the same `pulumi` binary, so
it would add the SDK to what kit needs without removing the need for the CLI. Nothing here
imports the Pulumi SDK, so `kit` starts without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.stack_names import PREVIEW_STACK, PROJECT, TEMPLATE_STACK, image_problem, preview_stack
from kit import environments, k8s_overlays
from kit.paths import ROOT

INSTALL_HINT = "install it: curl -fsSL https://get.pulumi.com | sh (https://www.pulumi.com/docs/install/)"
IMAGE_KEY = f"{PROJECT}:image"


class PreviewError(Exception):
    """A one-line, user-facing failure of a pulumi command (exit status 1 in kit)."""


class PulumiMissing(PreviewError):
    """No pulumi CLI, or no Pulumi project where one is expected (a set-up problem)."""


class BadInput(PreviewError):
    """The caller's input is refused before pulumi runs (a usage problem)."""


class NoSuchPreview(PreviewError):
    """The pull request has no preview stack."""


def stack_name(pull_request: int) -> str:
    try:
        return preview_stack(pull_request)
    except ValueError as error:
        raise BadInput(str(error)) from None


def _stderr_fd() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a replaced stderr (captured output)
        return None


class PulumiCli:
    """The pulumi binary, non-interactive, on the project folder (the one with Pulumi.yaml)."""

    def __init__(self, project: Path = ROOT) -> None:
        binary = shutil.which("pulumi")
        if binary is None:
            raise PulumiMissing(f"the pulumi CLI is not installed: {INSTALL_HINT}")
        if not (project / "Pulumi.yaml").is_file():
            raise PulumiMissing(f"no Pulumi.yaml in {project}: pass --cwd <folder of the Pulumi project>")
        self.binary, self.project = binary, project

    def run(self, *args: str, capture: bool = True, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, *args, "--non-interactive", "--cwd", str(self.project)]
        # Long commands (up, destroy) stream pulumi's own progress to stderr, so stdout stays the
        # caller's (a table, or a --json document).
        stream = None if capture else _stderr_fd()
        if stream is None:
            result = subprocess.run(argv, text=True, check=False, capture_output=True)  # noqa: S603
            if not capture:
                sys.stderr.write(result.stdout + result.stderr)
        else:
            result = subprocess.run(argv, text=True, check=False, stdout=stream)  # noqa: S603
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout or "").strip().splitlines() if capture else []
            raise PreviewError(
                f"pulumi {' '.join(args[:2])} failed (exit {result.returncode}): "
                f"{detail[-1] if detail else 'see its output above'}"
            )
        return result

    def json(self, *args: str) -> Any:
        out = self.run(*args, "--json").stdout
        try:
            return json.loads(out or "null")
        except ValueError:
            raise PreviewError(f"pulumi {' '.join(args)} did not print JSON: {out.strip()[:120]}") from None


@dataclass
class Preview:
    stack: str
    pull_request: int
    url: str | None = None
    # Unix seconds, from the stack outputs createdAt / expiresAt (None: never deployed).
    created_at: int | None = None
    expires_at: int | None = None
    last_update: str | None = None
    image: str | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass
class SweepResult:
    expired: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # pr-<n> stacks without an expiresAt output (never deployed): left alone.
    unknown: list[str] = field(default_factory=list)


def _int_or_none(value: object) -> int | None:
    try:
        return int(value) if isinstance(value, (int, float, str)) else None
    except ValueError:
        return None


def _outputs(cli: PulumiCli, stack: str) -> dict[str, Any]:
    # A stack that was never deployed has no outputs (pulumi may print {} or fail).
    result = cli.run("stack", "output", "--stack", stack, "--json", check=False)
    try:
        outputs = json.loads(result.stdout or "null") if result.returncode == 0 else None
    except ValueError:
        outputs = None
    return outputs if isinstance(outputs, dict) else {}


def _preview(stack: str, pull_request: int, outputs: dict[str, Any], last_update: str | None) -> Preview:
    url = outputs.get("serviceUrl")
    image = outputs.get("image")
    return Preview(
        stack=stack,
        pull_request=pull_request,
        url=str(url) if url else None,
        created_at=_int_or_none(outputs.get("createdAt")),
        expires_at=_int_or_none(outputs.get("expiresAt")),
        last_update=last_update,
        image=str(image) if image else None,
    )


def _preview_stacks(cli: PulumiCli) -> dict[int, dict[str, Any]]:
    """pr-<n> stacks of the project by pull request number (not the template, not dev/...)."""
    found = {}
    listed = cli.json("stack", "ls")
    for entry in listed if isinstance(listed, list) else []:
        name = str(entry.get("name", "")) if isinstance(entry, dict) else ""
        match = PREVIEW_STACK.match(name.rsplit("/", 1)[-1])  # "org/pr-3" on Pulumi Cloud
        if match:
            found[int(match["number"])] = entry
    return found


def list_previews(cli: PulumiCli) -> list[Preview]:
    previews = []
    for number, entry in sorted(_preview_stacks(cli).items()):
        stack = str(entry["name"])
        last_update = entry.get("lastUpdate")
        previews.append(
            _preview(stack, number, _outputs(cli, stack), str(last_update) if last_update else None)
        )
    return previews


def checked_image(image: str) -> str:
    """A preview runs a pull request's build by digest, from the configured repository."""
    problem = image_problem(image)
    if problem:
        raise BadInput(f"--image: {problem}")
    try:
        k8s_overlays.parse_image(image, environments.load().image_repository)
    except k8s_overlays.OverlayError as error:
        raise BadInput(f"--image: {error}") from None
    except environments.EnvironmentsError as error:
        raise PulumiMissing(f"config/environments.yaml: {'; '.join(error.problems)}") from None
    return image


def _render_overlay_for(pull_request: int, image: str, k8s_dir: Path) -> dict[Path, str | None]:
    """Render overlays/preview for the pull request; returns what to put back afterwards."""
    overlay = k8s_dir / "overlays" / "preview"
    committed: dict[Path, str | None] = {p: p.read_text() for p in overlay.iterdir() if p.is_file()}
    try:
        written = k8s_overlays.render_preview(pull_request, k8s_dir, image)
    except k8s_overlays.OverlayError as error:
        _restore(committed, overlay)
        raise BadInput(f"preview overlay: {error}") from None
    for path in written:
        committed.setdefault(path, None)  # a file the render added: removed again
    return committed


def _restore(committed: dict[Path, str | None], overlay: Path) -> None:
    for path in [p for p in overlay.iterdir() if p.is_file() and p not in committed]:
        path.unlink()
    for path, text in committed.items():
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)


def open_preview(cli: PulumiCli, pull_request: int, image: str) -> Preview:
    """Create or update stack pr-<n> running `image`; returns the deployed preview."""
    stack = stack_name(pull_request)
    image = checked_image(image)
    if pull_request not in _preview_stacks(cli):
        cli.run("stack", "init", stack, "--copy-config-from", TEMPLATE_STACK)
    cli.run("config", "set", "--stack", stack, IMAGE_KEY, image)
    # The program deploys k8s/overlays/preview (kustomize.v2.Directory): it holds this pull
    # request's namespace, host and image only while `up` runs; the committed placeholder
    # (pull request 0) is put back whatever happens.
    k8s_dir = cli.project / "k8s"
    committed = _render_overlay_for(pull_request, image, k8s_dir)
    try:
        cli.run(
            "up",
            "--stack",
            stack,
            "--yes",
            "--skip-preview",
            "--policy-pack",
            str(cli.project / "infra" / "policy"),
            capture=False,
        )
    finally:
        _restore(committed, k8s_dir / "overlays" / "preview")
    return _preview(stack, pull_request, _outputs(cli, stack), None)


def require_preview(cli: PulumiCli, pull_request: int) -> str:
    """The name of pull request's preview stack; NoSuchPreview when there is none."""
    stack = stack_name(pull_request)
    entry = _preview_stacks(cli).get(pull_request)
    if entry is None:
        raise NoSuchPreview(f"no preview stack {stack}")
    return str(entry["name"])


def close_preview(cli: PulumiCli, pull_request: int) -> str:
    """Destroy everything of stack pr-<n>, then remove the stack; returns its name."""
    stack = require_preview(cli, pull_request)
    _destroy(cli, stack)
    return stack


def _destroy(cli: PulumiCli, stack: str) -> None:
    cli.run("destroy", "--stack", stack, "--yes", "--skip-preview", capture=False)
    cli.run("stack", "rm", stack, "--yes")


def sweep(cli: PulumiCli, now: float, dry_run: bool = False) -> SweepResult:
    """Close every preview whose `expiresAt` has passed; a failed one does not stop the others."""
    result = SweepResult()
    for preview in list_previews(cli):
        if preview.expires_at is None:
            result.unknown.append(preview.stack)
        elif preview.expired(now):
            result.expired.append(preview.stack)
            if dry_run:
                continue
            try:
                _destroy(cli, preview.stack)
                result.destroyed.append(preview.stack)
            except PreviewError as error:
                result.failed.append(preview.stack)
                sys.stderr.write(f"error: {error}\n")
    return result
