from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from app.api.schemas import ApiModel, ResponseModel
from app.api.text import SafeText
from app.projects.domain.models import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    NAME_MIN_LENGTH,
    ProjectStatus,
    ProjectType,
)

ProjectName = Annotated[str, SafeText(min_length=NAME_MIN_LENGTH, max_length=NAME_MAX_LENGTH)]
# Free text: line breaks and tabs allowed, edge whitespace kept as written.
ProjectDescription = Annotated[str, SafeText(max_length=DESCRIPTION_MAX_LENGTH, multiline=True, strip=False)]


class ProjectCreate(ApiModel):
    name: ProjectName
    description: ProjectDescription | None = None
    type: ProjectType


class ProjectUpdate(ApiModel):
    name: ProjectName | None = None
    description: ProjectDescription | None = None
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
