"""Evidence exports (the export permission): ask for one, follow its build, cancel it, download
its parts and its custody log. Each request is audited; each download is also written to the
export's custody log, with who and from where. The archive's public key, which verifies every
package's signature, is published to anyone signed in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.exports.model import ExportJob, ExportRequest
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import ExportsDep, SignerDep
from search_api.downloads import content_disposition

router = APIRouter(prefix="/api/exports", tags=["exports"], route_class=AuditedRoute)
Exporting = Annotated[RequestAudit, Depends(audited(AuditAction.EXPORT, Permission.EXPORT))]
Anyone = Annotated[RequestAudit, Depends(audited(AuditAction.CONFIG_READ))]
ExportId = Path(pattern=r"^exp-[0-9a-f]{10}$")
RequestBody = Body(
    examples=[
        {"name": "合同 2024", "kind": "query", "query": "合同 after:2024-01-01", "format": "eml"},
        {"name": "Matter 17", "kind": "matter", "matter": "matter-1a2b3c4d", "format": "mbox"},
    ]
)


class PublicKey(BaseModel):
    algorithm: str = "Ed25519"
    public_key: str = Field(description="the raw 32-byte public key, hex")
    fingerprint: str = Field(description="sha256:<hex> of the raw key, as verify.py prints it")


@router.post("", status_code=202)
def create_export(
    audit: Exporting, exports: ExportsDep, request: ExportRequest = RequestBody
) -> ExportJob:
    """Start an export of a search, a matter (its active holds) or a list of ids; a worker
    builds it. Only mail the requester may see goes in."""
    audit.details.update(
        {"step": "requested", "request": request.model_dump(mode="json", exclude={"ids"})}
    )
    audit.details["ids"] = len(request.ids)
    job = exports.create(request, audit.acting, audit.client)
    audit.target = job.id
    return job


@router.get("")
def list_exports(audit: Exporting, exports: ExportsDep) -> list[ExportJob]:
    """The exports the caller asked for, or could have (its scope covers theirs)."""
    audit.target, audit.details["step"] = "exports", "list"
    return exports.jobs_for(audit.acting)


@router.get("/pubkey")
def public_key(audit: Anyone, signer: SignerDep) -> PublicKey:
    """The key that signs every package's manifest: give it to `verify.py --public-key`."""
    audit.target = "export-signing-key"
    return PublicKey(public_key=signer.public_key_hex, fingerprint=signer.fingerprint)


@router.get("/{export_id}")
def get_export(audit: Exporting, exports: ExportsDep, export_id: str = ExportId) -> ExportJob:
    """Status and progress; once built, its parts (name, size, SHA-256) and expiry."""
    audit.target, audit.details["step"] = export_id, "status"
    return exports.job(export_id, audit.acting)


@router.post("/{export_id}/cancel")
def cancel_export(audit: Exporting, exports: ExportsDep, export_id: str = ExportId) -> ExportJob:
    audit.target, audit.details["step"] = export_id, "cancel"
    return exports.cancel(export_id, audit.acting, audit.client)


@router.get(
    "/{export_id}/parts/{number}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def download_part(
    audit: Exporting,
    exports: ExportsDep,
    export_id: str = ExportId,
    number: int = Path(ge=1, le=100_000),
) -> StreamingResponse:
    """One part of the package (a zip), streamed from the exports bucket."""
    audit.target, audit.details["step"] = export_id, "download"
    part = exports.download(export_id, number, audit.acting, audit.client)
    audit.details.update({"part": number, "name": part.name, "sha256": part.sha256})
    return StreamingResponse(
        part.chunks,
        media_type="application/zip",
        headers={
            "Content-Length": str(part.size),
            # filename*: the UTF-8 name (RFC 6266); filename: an ASCII one for older clients
            "Content-Disposition": content_disposition(
                part.name, f"{export_id}_part{number:03d}.zip"
            ),
            "X-Content-SHA256": part.sha256,
        },
    )


@router.get("/{export_id}/custody", response_class=PlainTextResponse)
def custody_log(audit: Exporting, exports: ExportsDep, export_id: str = ExportId) -> str:
    """custody.log: requested, built, every download (who, when, from where)."""
    audit.target, audit.details["step"] = export_id, "custody"
    return exports.custody_log(export_id, audit.acting)
