"""TrueFoundry-shaped answers for the client tests, written from the contract
(/work/shared/truefoundry-api.md), not from the client's models."""

from __future__ import annotations

from typing import Any

import httpx

TENANT = "acme"
REPO = "repo-a"
REPO_ID = "17"


def version_json(
    number: int, *, name: str = "m1", version_id: str | None = None, **manifest: Any
) -> dict[str, Any]:
    """A version as the service returns it: the full manifest, the fqn, the subject in camelCase."""
    return {
        "id": version_id or f"00000000-0000-4000-8000-{number:012d}",
        "fqn": f"model:{TENANT}/{REPO}/{name}:{number}",
        "created_by_subject": {"subjectId": "u-1", "subjectType": "user", "subjectSlug": "ann@acme.io"},
        "manifest": {
            "type": "model-version",
            "name": name,
            "ml_repo": REPO,
            "version": number,
            "metadata": {},
            "source": {"type": "external", "uri": f"s3://bucket/{name}/{number}"},
            "step": 0,
            **manifest,
        },
        "ml_repo_id": REPO_ID,
        "model_id": "11111111-2222-4333-8444-555555555555",
        "created_at": "2023-11-07T05:31:56Z",
        "updated_at": "2023-11-07T05:31:56Z",
        "tags": [],
        "metrics": [],
        "deployable": False,
    }


def data(payload: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"data": payload})


def page(items: list[dict[str, Any]], *, total: int, offset: int, limit: int) -> httpx.Response:
    return httpx.Response(
        200, json={"data": items, "pagination": {"total": total, "offset": offset, "limit": limit}}
    )


def svc_error(status: int, message: str = "boom", headers: dict[str, str] | None = None) -> httpx.Response:
    """servicefoundry's HttpError body."""
    return httpx.Response(status, json={"statusCode": status, "message": message}, headers=headers)
