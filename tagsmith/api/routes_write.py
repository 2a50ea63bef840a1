"""Endpoints that do work: tag a photo now, add media, submit jobs, record review verdicts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ml.catalog import ValidationError
from tagsmith import review, service
from tagsmith.api.deps import Caller, caller
from tagsmith.api.errors import ApiError, not_found
from tagsmith.api.media import add_to_library, resolve, upload_target
from tagsmith.api.routes_read import BINARY
from tagsmith.api.tables import ready, rows
from tagsmith.api.uploads import received, upload_name

router = APIRouter(prefix="/v1")
CallerDep = Annotated[Caller, Depends(caller)]


def _readable(exc: Exception, path) -> str:
    return str(exc).replace(str(path), "the upload").replace(path.name, "the upload")


@router.post("/tag", summary="Tag a photo now with the library's heads in use (the body: the photo's bytes)",
             openapi_extra=BINARY)  # fmt: skip
async def tag(
    who: CallerDep,
    request: Request,
    add: Annotated[
        bool, Query(description="Also add the photo to the library's media (tagged for good next run)")
    ] = False,
    name: Annotated[str | None, Query(description="File name when added (default: a random one)")] = None,
):
    ready(who.library)
    name = upload_name(name, "")
    async with received(request, request.app.state.settings.max_photo_bytes, ("image",)) as (path, found):
        try:
            result = await run_in_threadpool(service.tag_photo, who.library, path)
        except ValueError as exc:  # MediaProblem: truncated, too many pixels, not decodable
            raise ApiError("unreadable_media", _readable(exc, path)) from None
        if add:
            result["added"] = await run_in_threadpool(add_to_library, who.library, path, upload_target(name, found))
    return result


@router.post("/media", status_code=201, openapi_extra=BINARY,
             summary="Add a photo or video to the library's media (the body: its bytes)")  # fmt: skip
async def add_media(who: CallerDep, request: Request, name: Annotated[str | None, Query()] = None):
    service.resources()["libraries"].config(who.library)
    name = upload_name(name, "")
    async with received(request, request.app.state.settings.max_media_bytes, ("image", "video")) as (path, found):
        added = await run_in_threadpool(add_to_library, who.library, path, upload_target(name, found))
    return {"kind": found.kind, **added}


class JobRequest(BaseModel):
    uris: list[str] = Field(min_length=1, max_length=10_000, description="Files of the library's media, relative to it")


@router.post("/jobs", status_code=202, summary="Tag a batch or a video by URI: a Dagster run of `tag_library`")
def submit_job(who: CallerDep, request: Request, body: JobRequest):
    service.resources()["libraries"].config(who.library)
    resolved = [resolve(who.library, uri)[0] for uri in body.uris]
    return request.app.state.jobs.submit(who.library, resolved, who.name)


@router.get("/jobs", summary="The library's jobs, newest first")
def list_jobs(who: CallerDep, request: Request):
    return {"jobs": request.app.state.jobs.list(who.library)}


@router.get("/jobs/{job_id}", summary="A job's status; when done, what became of each file")
def job_status(who: CallerDep, request: Request, job_id: Annotated[str, Path(max_length=64)]):
    found = request.app.state.jobs.status(who.library, job_id)
    if found is None:
        raise not_found(f"job {job_id!r}")
    return found


@router.get("/review/queue", summary="Tags and video stretches waiting for review, in review order")
def review_queue(
    who: CallerDep,
    facet: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
):
    ready(who.library)
    table = review.queue(who.library, facet)
    return {"total": table.height, "offset": offset, "items": rows(table.slice(offset, limit))}


class Verdict(BaseModel):
    media_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    facet: str = Field(max_length=64)
    tag_id: str = Field(max_length=128)
    verdict: Literal["accept", "reject", "replace"]
    new_tag_id: str | None = Field(None, max_length=128)
    kind: Literal["photo", "segment"] = "photo"
    start_s: float | None = Field(None, ge=0)
    end_s: float | None = Field(None, ge=0)


class Verdicts(BaseModel):
    verdicts: list[Verdict] = Field(min_length=1, max_length=5000)


@router.post("/review/verdicts", status_code=201,
             summary="Record verdicts (accept / reject / replace): the same log as `tagsmith review`")  # fmt: skip
def record_verdicts(who: CallerDep, body: Verdicts):
    ready(who.library)
    try:
        n = review.record(who.library, [v.model_dump() for v in body.verdicts], who=who.name, via="api")
    except ValidationError as exc:
        if all("is not in library" in p for p in exc.problems):
            raise not_found("media") from None
        raise ApiError("invalid_request", exc.problems[0], details=exc.problems) from None
    return {"recorded": n}
