"""What identity's routes receive: the service, from the app state the composition root filled."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.identity.application.services import IdentityService


async def identity_service(request: Request) -> IdentityService:
    service: IdentityService = request.app.state.identity_service
    return service


IdentityServiceDep = Annotated[IdentityService, Depends(identity_service)]
