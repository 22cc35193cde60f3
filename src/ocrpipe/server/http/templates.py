"""Template routes: which templates the service reads printouts with, REST template jobs and their field
rows, and the web page's template editor (``/v1/admin/templates/*``: the ``admin`` scope when keys exist)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, File, Form, Header, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ocrpipe.errors import ErrorCode
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.http import schemas
from ocrpipe.server.http.deps import Authorized, Caller, ServiceState, Slot, State
from ocrpipe.server.http.uploads import queue_upload, read_upload
from ocrpipe.server.security.auth import tenant_of
from ocrpipe.server.storage.models import JobKind

router = APIRouter(prefix="/v1", dependencies=[Authorized], tags=["templates"])

EDITOR_ERRORS: dict[int | str, dict[str, Any]] = {
    **schemas.ERRORS,
    404: {"model": schemas.ErrorBody, "description": "template_draft_not_found"},
    409: {"model": schemas.ErrorBody, "description": "template_exists or no_template_folder"},
}


@router.get("/templates", summary="The templates in service (built-in and user)")
async def list_templates(svc: State) -> dict[str, Any]:
    """Name, device, version, page and source file of every template template jobs are read with;
    ``reload_error`` is the message of the last refused reload of the user folder (the last good set
    stays in service), else null."""
    listing: dict[str, Any] = svc.templates.listing()
    return listing


# ---- template jobs -----------------------------------------------------------------------------------

@router.post("/template-jobs", status_code=202, summary="Queue a printout (template job), as gRPC Submit does",
             response_model=schemas.JobOut,
             responses={200: {"description": "Idempotent replay: the job created earlier with this key"},
                        409: {"model": schemas.ErrorBody, "description": "key reused with other content"},
                        **schemas.ERRORS})
async def create_template_job(svc: State, response: Response, caller: Caller,
                              file: Annotated[UploadFile, File(description="one-page image or PDF")],
                              device: Annotated[str | None, Form(max_length=128)] = None,
                              exam_id: Annotated[str | None, Form(max_length=128)] = None,
                              idempotency_key: Annotated[str | None, Header(max_length=255)] = None
                              ) -> dict[str, Any]:
    """The page is read by template mode with the served set (``GET /v1/templates``), the same runner and
    job store as gRPC ``Submit``; a page no template matches is read by the general pipeline. Poll
    ``/v1/jobs/{id}``; ``/v1/jobs/{id}/result`` is the template result and ``/v1/jobs/{id}/fields`` its
    stored field rows."""
    runner = svc.template_runner
    return await queue_upload(svc, response, caller, file, idempotency_key=idempotency_key, scope="rest-template",
                              wake=runner.wake if runner is not None else None, kind=JobKind.TEMPLATE.value,
                              device=device or None, exam_id=exam_id or None)


@router.get("/jobs/{job_id}/fields", summary="The field rows a template job stored",
            responses={404: {"model": schemas.ErrorBody}})
async def job_fields(svc: State, job_id: str, caller: Caller) -> dict[str, Any]:
    """One row per field (template, device, exam_id, field, value, unit, valid, confidence, raw), as written
    with the job's success; empty before it or when no template matched the page."""
    rows = await run_in_threadpool(svc.store.fields, job_id, tenant_of(caller))
    if rows is None:
        raise ServiceError(ErrorCode.JOB_NOT_FOUND, f"no job {job_id!r} (unknown or past retention)")
    return {"job_id": job_id, "fields": rows}


# ---- the template editor -------------------------------------------------------------------------------

editor = APIRouter(prefix="/v1/admin/templates", dependencies=[Authorized], tags=["templates"])


def _json_form(text: str, what: str, code: ErrorCode) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ServiceError(code, f"{what}: not JSON ({exc})") from exc


async def _one_page(svc: ServiceState, upload: UploadFile) -> np.ndarray:
    """The first and only page of an upload, decoded (intake checks first)."""
    data, name = await read_upload(upload, svc)

    def render() -> np.ndarray:
        pages = svc.engine.open_pages(data, name)
        try:
            if len(pages) != 1:
                raise ServiceError(ErrorCode.TOO_MANY_PAGES, f"a template page must be one page; this file has "
                                   f"{len(pages)}")
            image: np.ndarray = pages.render(0)
            return image
        finally:
            pages.close()

    return await run_in_threadpool(render)


@editor.post("/drafts", status_code=201, dependencies=[Slot], responses=EDITOR_ERRORS,
             summary="Propose a template from a reference image and the values printed on it")
async def create_draft(svc: State, file: Annotated[UploadFile, File(description="a clean reference (one page)")],
                       values: Annotated[str, Form(description='JSON: field name -> value as printed, e.g. '
                                                   '{"R_S": "-2.25", "date": "2024/01/11"}')],
                       name: Annotated[str, Form(max_length=64)],
                       device: Annotated[str | None, Form(max_length=128)] = None,
                       version: Annotated[str, Form(max_length=32)] = "1") -> dict[str, Any]:
    """What ``ocrpipe template new`` makes: the reference is read with the full pipeline, each value
    located, its type, format, unit, rule and label inferred. Answers the draft (``template``, ``missing``
    values, ``dropped_labels``, the recognised ``lines``) and ``check``: the reference read back with it."""
    from ocrpipe.server.scheduling.template_drafts import check_name, check_values
    from ocrpipe.templates.author import trim_to_paper

    parsed = check_values(_json_form(values, "values", ErrorCode.INVALID_ARGUMENT))
    check_name(name)
    image = trim_to_paper(await _one_page(svc, file))
    pages, _ = await run_in_threadpool(svc.engine.run_pages, [image])
    draft: dict[str, Any] = await run_in_threadpool(
        lambda: svc.drafts.create(image, parsed, list(pages[0].lines), name=name, device=device, version=version))
    return draft


@editor.get("/drafts/{draft_id}", summary="A template draft", responses={404: {"model": schemas.ErrorBody}})
async def get_draft(svc: State, draft_id: str) -> dict[str, Any]:
    draft: dict[str, Any] = await run_in_threadpool(svc.drafts.get, draft_id)
    return draft


@editor.delete("/drafts/{draft_id}", summary="Discard a template draft and its reference image",
               responses={404: {"model": schemas.ErrorBody}})
async def discard_draft(svc: State, draft_id: str) -> dict[str, Any]:
    await run_in_threadpool(svc.drafts.discard, draft_id)
    return {"id": draft_id, "deleted": True}


@editor.get("/drafts/{draft_id}/reference", summary="A draft's reference image (PNG, template pixels)",
            response_class=FileResponse, responses={200: {"content": {"image/png": {}}},
                                                    404: {"model": schemas.ErrorBody}})
async def draft_reference(svc: State, draft_id: str) -> FileResponse:
    path = await run_in_threadpool(svc.drafts.reference_path, draft_id)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, no-store"})


@editor.post("/drafts/{draft_id}/try", dependencies=[Slot], responses=EDITOR_ERRORS,
             summary="Read a page (or the reference) with the edited template alone")
async def try_draft(svc: State, draft_id: str,
                    template: Annotated[str, Form(description="the edited template (JSON, as the draft has it)")],
                    file: Annotated[UploadFile | None, File(description="a page; none: the reference")] = None,
                    values: Annotated[str | None, Form(description="JSON: the printed values by (renamed) field; "
                                                       "default: the draft's")] = None) -> dict[str, Any]:
    """Whether the page matched (score, or why not) and every field's value, ``valid``, ``issues`` and box
    in the page's pixels; on the reference also ``problems``: values not read back as printed."""
    from ocrpipe.server.scheduling.template_drafts import check_values

    data = _json_form(template, "template", ErrorCode.INVALID_TEMPLATE)
    printed = None if values is None else check_values(_json_form(values, "values", ErrorCode.INVALID_ARGUMENT))
    await run_in_threadpool(svc.drafts.template, draft_id, data)  # a bad template is refused before decoding
    image = None if file is None else await _one_page(svc, file)
    out: dict[str, Any] = await run_in_threadpool(svc.drafts.try_on, draft_id, data, image, printed)
    return out


class SaveRequest(BaseModel):
    """A draft's edited template, to serve."""

    draft: str = Field(max_length=64, description="the draft's id")
    template: dict[str, Any] = Field(description="the edited template (JSON, as the draft has it)")
    replace: bool = Field(False, description="overwrite a template file of the same name in the folder")


@editor.post("", status_code=201, responses=EDITOR_ERRORS,
             summary="Save a draft into the served template folder (in service at once)")
async def save_template(svc: State, body: Annotated[SaveRequest, Body()]) -> dict[str, Any]:
    """Writes ``NAME.yaml`` and ``NAME.png`` into ``--templates DIR`` and reloads the set; a name that is a
    built-in's or another file's is ``template_exists``; a set the file would break is rolled back and
    answered ``invalid_template`` with the reason."""
    saved: dict[str, Any] = await run_in_threadpool(
        lambda: svc.drafts.save(body.draft, body.template, replace=body.replace))
    return saved


@editor.delete("/{name}", summary="Take a user template out of service (its file leaves the folder)",
               responses={400: {"model": schemas.ErrorBody}, 404: {"model": schemas.ErrorBody}})
async def remove_template(svc: State, name: str) -> dict[str, Any]:
    """Deletes ``NAME.yaml`` (and its reference image) from the served folder and reloads the set; a
    built-in cannot be removed."""
    removed: dict[str, Any] = await run_in_threadpool(svc.drafts.remove, name)
    return removed
