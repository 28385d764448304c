from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.auth import AnyUser, Privileged
from app.api.dependencies import SettingsDep
from app.api.errors import error_responses
from app.idempotency.http import IdempotencyKeyHeader, outcome_response, request_fingerprint
from app.idempotency.port import IdempotentRequest, StoredResponse
from app.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor, PageRequest
from app.projects.application.services import CreateProject, UpdateProject
from app.projects.domain.models import Project, ProjectStatus
from app.projects.presentation.dependencies import ProjectServiceDep
from app.projects.presentation.schemas import ProjectCreate, ProjectPage, ProjectRead, ProjectUpdate

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectRead,
    responses=error_responses(401, 422, 429),
)
async def create_project(
    body: ProjectCreate,
    request: Request,
    response: Response,
    actor: AnyUser,
    projects: ProjectServiceDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ProjectRead | Response:
    """Create a project owned by the caller; its owner is notified asynchronously.

    Send an `Idempotency-Key` to make retries safe (see the header's description).
    """
    command = CreateProject(name=body.name, type=body.type, description=body.description)

    def location(project: Project) -> str:
        return str(request.url_for("get_project", project_id=project.id).path)

    if idempotency_key is None:
        project = await projects.create(actor, command)
        response.headers["Location"] = location(project)
        return ProjectRead.model_validate(project)

    def render(project: Project) -> StoredResponse:
        body = ProjectRead.model_validate(project).model_dump(mode="json", by_alias=True)
        return StoredResponse(status.HTTP_201_CREATED, body, location(project))

    outcome = await projects.create_idempotently(
        actor,
        command,
        IdempotentRequest(
            key=idempotency_key,
            request_hash=request_fingerprint(request, body),
            ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
            render=render,
        ),
    )
    return outcome_response(outcome)


@router.get("", response_model=ProjectPage, responses=error_responses(401, 422, 429))
async def list_projects(
    actor: AnyUser,
    projects: ProjectServiceDep,
    status_filter: Annotated[ProjectStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> Response:
    """Newest first, keyset-paginated. Members see their own projects; managers and admins all."""
    # The body comes from the read model in ProjectPage's shape, already JSON (a test compares
    # the bytes with pydantic's): 20 rows are not validated into models to be serialized again.
    body = await projects.list_page(
        actor,
        status=status_filter,
        page=PageRequest(limit=limit, after=Cursor.decode(cursor) if cursor else None),
    )
    return Response(body, media_type="application/json")


@router.get("/{project_id}", response_model=ProjectRead, responses=error_responses(401, 404, 422, 429))
async def get_project(project_id: uuid.UUID, actor: AnyUser, projects: ProjectServiceDep) -> ProjectRead:
    """One project, or 404 when it does not exist or the caller may not see it."""
    return ProjectRead.model_validate(await projects.get(actor, project_id))


@router.patch("/{project_id}", response_model=ProjectRead, responses=error_responses(401, 404, 422, 429))
async def update_project(
    project_id: uuid.UUID, body: ProjectUpdate, actor: AnyUser, projects: ProjectServiceDep
) -> ProjectRead:
    """Change some fields (owner, manager or admin). Send `description: null` to clear it."""
    sent = body.model_fields_set
    command = UpdateProject(
        name=body.name,
        type=body.type,
        status=body.status,
        **({"description": body.description} if "description" in sent else {}),
    )
    return ProjectRead.model_validate(await projects.update(actor, project_id, command))


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422, 429),
)
async def delete_project(project_id: uuid.UUID, actor: Privileged, projects: ProjectServiceDep) -> Response:
    """Delete a project (managers and admins only)."""
    await projects.delete(actor, project_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
