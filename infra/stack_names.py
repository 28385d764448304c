"""Names the Pulumi program and the preview driver share, importable without the Pulumi SDK.

The `kit` CLI imports infra/previews.py, which must not pull in the SDK (infra/stack_config.py
does): these names live here and stack_config re-exports them.
"""

from __future__ import annotations

import re

PROJECT = "reference-platform"
ENVIRONMENT_STACKS = ("dev", "staging", "prod")
# Preview stacks pr-<n> are created from this template stack (Pulumi.pr.yaml).
TEMPLATE_STACK = "pr"
PREVIEW_STACK = re.compile(r"^pr-(?P<number>[1-9][0-9]{0,6})$")
# An image that names one build: a tag other than latest, or a digest.
PINNED_IMAGE = re.compile(
    r"^[a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+(?::(?!latest$)[\w.-]+|@sha256:[0-9a-f]{64})$"
)


def preview_stack(pull_request: int) -> str:
    """The stack of a pull request's preview; the number must be what PREVIEW_STACK accepts."""
    name = f"pr-{pull_request}"
    if not PREVIEW_STACK.match(name):
        raise ValueError(f"pull request number must be between 1 and 9999999, got {pull_request}")
    return name


def image_problem(image: str) -> str | None:
    """Why `image` does not name one build, or None when it does."""
    if PINNED_IMAGE.match(image):
        return None
    return f"{image!r} is not registry/repository:tag (not latest) or registry/repository@sha256:<digest>"
