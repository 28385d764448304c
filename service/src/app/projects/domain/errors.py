from __future__ import annotations

from app.kernel.errors import NotFoundError, PermissionDeniedError


class ProjectNotFoundError(NotFoundError):
    code = "project_not_found"

    def __init__(self) -> None:
        # Also used when the project exists but the caller may not see it: no existence leak.
        super().__init__("Project not found")


class ProjectDeletionDeniedError(PermissionDeniedError):
    code = "project_deletion_denied"

    def __init__(self) -> None:
        super().__init__("Only managers and admins can delete projects")
