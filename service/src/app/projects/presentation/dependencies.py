"""What the projects routes receive: the service, from the app state the composition root filled."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.projects.application.services import ProjectService


async def project_service(request: Request) -> ProjectService:
    service: ProjectService = request.app.state.project_service
    return service


ProjectServiceDep = Annotated[ProjectService, Depends(project_service)]
