from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.core.schemas import ApiModel, ResponseModel
from app.projects.domain.models import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    NAME_MIN_LENGTH,
    ProjectStatus,
    ProjectType,
)


class ProjectCreate(ApiModel):
    name: str = Field(min_length=NAME_MIN_LENGTH, max_length=NAME_MAX_LENGTH)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)
    type: ProjectType


class ProjectUpdate(ApiModel):
    name: str | None = Field(default=None, min_length=NAME_MIN_LENGTH, max_length=NAME_MAX_LENGTH)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)
    type: ProjectType | None = None
    status: ProjectStatus | None = None


class ProjectRead(ResponseModel):
    id: uuid.UUID
    name: str
    description: str | None
    type: ProjectType
    status: ProjectStatus
    owner_id: uuid.UUID
    created_at: datetime
    updated_at: datetime


class PageMeta(ResponseModel):
    limit: int
    has_more: bool
    next_cursor: str | None


class ProjectPage(ResponseModel):
    data: list[ProjectRead]
    meta: PageMeta
