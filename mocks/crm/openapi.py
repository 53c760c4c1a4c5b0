"""Pydantic models used only to document the CRM routes in OpenAPI (never on the request path).

The per-version documents come from the kernel (`VersionRegistry.openapi`), which rewrites the
`Opportunity` schema's StageName enum on v60.0.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, RootModel

from mocks.crm.schema import STAGE_NAMES

VERSION_NAMES = ("59.0", "60.0")

StageValue = Literal[STAGE_NAMES]  # type: ignore[valid-type]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorItem(BaseModel):
    message: str
    errorCode: str
    fields: list[str] | None = None


class Errors(RootModel[list[ErrorItem]]):
    pass


class Attributes(BaseModel):
    type: str
    url: str


class SaveResult(BaseModel):
    id: str
    success: bool
    errors: list[Any]
    created: bool | None = None


class Account(_Open):
    attributes: Attributes
    Id: str | None = None
    Name: str | None = None
    Industry: str | None = None
    AnnualRevenue: float | None = None
    BillingCountry: str | None = None
    IsDeleted: bool | None = None
    MasterRecordId: str | None = None


class Contact(_Open):
    attributes: Attributes
    Id: str | None = None
    AccountId: str | None = None
    LastName: str | None = None
    Email: str | None = None


class Opportunity(_Open):
    attributes: Attributes
    Id: str | None = None
    AccountId: str | None = None
    Name: str | None = None
    StageName: StageValue | None = None
    CloseDate: str | None = None
    Amount: float | None = None
    IsClosed: bool | None = None
    IsWon: bool | None = None


class Lead(_Open):
    attributes: Attributes
    Id: str | None = None
    LastName: str | None = None
    Company: str | None = None
    Status: str | None = None


class QueryResult(BaseModel):
    totalSize: int
    done: bool
    nextRecordsUrl: str | None = None
    records: list[Account | Contact | Opportunity | Lead]


class Describe(_Open):
    name: str
    keyPrefix: str
    fields: list[dict[str, Any]]


class DescribeGlobal(_Open):
    encoding: str
    maxBatchSize: int
    sobjects: list[dict[str, Any]]


class Limit(BaseModel):
    Max: int
    Remaining: int


class Limits(RootModel[dict[str, Limit]]):
    pass


class VersionInfo(BaseModel):
    label: str
    url: str
    version: str


class Versions(RootModel[list[VersionInfo]]):
    pass


class Resources(RootModel[dict[str, str]]):
    pass


class Urls(RootModel[list[str]]):
    pass


ERR = {"model": Errors, "description": "Salesforce error array"}
COMMON = {400: ERR, 401: ERR, 403: ERR, 404: ERR}
SObjectOut = Account | Contact | Opportunity | Lead


def params(*path: str, query: tuple[str, ...] = (), body: bool = False) -> dict[str, Any]:
    """OpenAPI parameters of a route whose handler reads `request.path_params` itself (no per-request
    parameter validation by FastAPI: the hot path stays plain)."""
    out: list[dict[str, Any]] = [{"name": "api_version", "in": "path", "required": True,
                                  "description": "API version, e.g. 60.0",
                                  "schema": {"type": "string", "enum": list(VERSION_NAMES)}}]
    out += [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in path]
    out += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in query]
    extra: dict[str, Any] = {"parameters": out}
    if body:
        extra["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "additionalProperties": True}}}}
    return extra
