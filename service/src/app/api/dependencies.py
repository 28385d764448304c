"""Dependencies every context's routes may take: the settings, the rate limiter."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.settings import Settings


async def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(settings_of)]
