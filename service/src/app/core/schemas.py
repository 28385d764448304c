"""Base for every DTO at the HTTP edge: camelCase on the wire, unknown fields refused."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from datetime import datetime
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.responses import Response


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


# Types orjson writes exactly as pydantic's JSON mode does (tests compare the bytes).
_NATIVE: tuple[type, ...] = (str, int, bool, uuid.UUID, datetime, enum.Enum, NoneType)


def _native(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, UnionType):
        return all(_native(arg) for arg in get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, _NATIVE)


class ModelJson:
    """Writes objects as JSON in a flat response model's shape, without validating them.

    For hot read paths whose objects come from our own database and domain (already valid):
    pydantic's validate-then-serialize of a 20-row page cost more CPU than the query.
    The model stays the single source of the shape (field names, aliases, OpenAPI); only
    fields orjson renders byte-for-byte like pydantic are accepted, checked at import.
    """

    def __init__(self, model: type[BaseModel]) -> None:
        unsupported = [name for name, f in model.model_fields.items() if not _native(f.annotation)]
        if unsupported:
            raise TypeError(f"{model.__name__}: fields {unsupported} need pydantic to serialize")
        self._fields = tuple((field.alias or name, name) for name, field in model.model_fields.items())

    def many(self, objs: Iterable[object]) -> list[dict[str, Any]]:
        fields = self._fields
        return [{alias: getattr(obj, name) for alias, name in fields} for obj in objs]


def _uuid_subclass(value: object) -> str:
    # orjson writes uuid.UUID itself; asyncpg returns a faster subclass that it does not know.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(content: Any, status_code: int = 200) -> Response:
    """A JSON response written by orjson (UTC as "Z", like pydantic)."""
    body = orjson.dumps(content, default=_uuid_subclass, option=orjson.OPT_UTC_Z)
    return Response(body, status_code, media_type="application/json")
