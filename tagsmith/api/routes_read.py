"""Read endpoints: search, similar, one media's tags, the catalog, the models, exports, SQL."""

from __future__ import annotations

import os
import re
import tempfile
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from resources.sql_sandbox import SandboxError
from tagsmith import service
from tagsmith.api.deps import Caller, caller
from tagsmith.api.errors import ApiError, not_found
from tagsmith.api.tables import ready, rows
from tagsmith.api.uploads import received

router = APIRouter(prefix="/v1")
MEDIA_ID = r"^[0-9a-f]{64}$"
LANG = r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$"
FACET = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
CallerDep = Annotated[Caller, Depends(caller)]
BINARY = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}  # fmt: skip


@router.get("/search", summary="Photos and video stretches whose tags match every word")
def search(
    who: CallerDep,
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words: names, aliases, identifiers")],
    lang: Annotated[str | None, Query(pattern=LANG, description="Display names in this language (fr, de, ja)")] = None,
    facet: Annotated[list[str], Query(description="Only tags of these facets (repeatable)")] = (),
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    include_review: bool = False,
):
    for name in facet:
        if not re.match(FACET, name):
            raise ApiError("invalid_request", f"facet: not a facet name: {name[:40]!r}")
    ready(who.library)
    hits = service.search(
        who.library, q, limit=limit, offset=offset, facets=tuple(facet), lang=lang, include_review=include_review
    )
    found = rows(hits)
    return {
        "query": q,
        "offset": offset,
        "limit": limit,
        "hits": found,
        "next_offset": offset + limit if len(found) == limit else None,
    }


@router.get("/similar", summary="Photos most like one of the library's photos")
def similar(
    who: CallerDep,
    media_id: Annotated[str, Query(pattern=MEDIA_ID, description="A photo of this library (sha256 of its bytes)")],
    limit: Annotated[int, Query(ge=1, le=200)] = 10,
):
    ready(who.library)
    try:
        found = service.similar(who.library, media_id, limit=limit)
    except LookupError:
        raise not_found(f"media {media_id}") from None
    return {"media_id": media_id, "similar": found}


@router.post(
    "/similar",
    summary="Photos most like an uploaded photo (the body: the photo's bytes)",
    openapi_extra={
        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def similar_upload(who: CallerDep, request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 10):
    from starlette.concurrency import run_in_threadpool

    ready(who.library)
    async with received(request, request.app.state.settings.max_photo_bytes, ("image",)) as (path, _):
        try:
            found = await run_in_threadpool(service.similar, who.library, str(path), limit)
        except ValueError as exc:
            raise ApiError("unreadable_media", str(exc).replace(str(path), "the upload")) from None
    return {"similar": found}


@router.get("/media/{media_id}/tags", summary="One photo's or video's tags and segments")
def media_tags(who: CallerDep, media_id: Annotated[str, Path(pattern=MEDIA_ID)]):
    ready(who.library)
    found = service.media_tags(who.library, media_id)
    if found is None:
        raise not_found(f"media {media_id}")
    uris, tags, segments = found
    return {"media_id": media_id, "uris": uris, "tags": rows(tags), "segments": rows(segments)}


@router.get("/catalog", summary="The library's tags, display names in a language")
def catalog(who: CallerDep, lang: Annotated[str | None, Query(pattern=LANG)] = None):
    ready(who.library)
    return {"lang": lang, "tags": rows(service.catalog_table(who.library, lang=lang))}


@router.get("/models", summary="Each facet's head in use, what it promises for a new shoot, and every version")
def models(who: CallerDep):
    ready(who.library)
    heads = service.named_query(who.library, "head_metrics")
    versions = service.head_versions(who.library)
    return {"heads": rows(heads), "versions": rows(versions, drop=("model",))}


@router.get("/tags/export", summary="The tag table as CSV or Parquet, streamed")
def export(
    who: CallerDep,
    request: Request,
    format: Literal["csv", "parquet"] = "csv",
    include_review: bool = False,
):
    ready(who.library)
    table = service.tag_table(who.library, include_review=include_review)
    name = f"{who.library}-tags.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":

        def chunks(step: int = 20_000):
            for start in range(0, max(table.height, 1), step):
                yield table.slice(start, step).write_csv(include_header=start == 0).encode()

        return StreamingResponse(chunks(), media_type="text/csv", headers=headers)
    settings = request.app.state.settings
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    out = tempfile.NamedTemporaryFile(dir=settings.tmp_dir, prefix="export-", suffix=".parquet", delete=False)
    out.close()
    table.write_parquet(out.name)
    return FileResponse(
        out.name, media_type="application/vnd.apache.parquet", filename=name,
        background=BackgroundTask(os.unlink, out.name),
    )  # fmt: skip


class SqlQuery(BaseModel):
    sql: str = Field(min_length=1, max_length=20_000, description="One SELECT over the library's views")
    max_rows: int = Field(1000, ge=1, le=10_000)


@router.post("/sql", summary="One read-only SELECT over the library's views (the sandbox of `tagsmith sql`)")
def sql(who: CallerDep, query: SqlQuery):
    ready(who.library)
    try:
        result = service.run_sql(who.library, query.sql, max_rows=query.max_rows, timeout_s=10.0)
    except SandboxError as exc:
        raise ApiError("sql_refused", str(exc)) from None
    return {
        "columns": result.table.columns,
        "rows": rows(result.table),
        "truncated": result.truncated,
        "seconds": round(result.seconds, 4),
    }
