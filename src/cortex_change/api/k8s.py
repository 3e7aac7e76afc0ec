"""The Kubernetes admission webhook (docs/admission.md): `POST /k8s/admission` answers an
AdmissionReview (admission.k8s.io/v1) for Deployments and StatefulSets.

The API server calls it with the bearer token of the webhook's kubeconfig; any valid token may
ask (it only reads). A denial is an answer (200, `allowed: false`, `status.code` 403 and the
reason); a malformed review is 422, a missing or unknown token 401, as on the rest of the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..services.admission import review
from ..services.context import Context
from ..services.tokens import authenticate
from . import schemas
from .routes import Credentials
from .strict import only_known_query_parameters

k8s = APIRouter(tags=["kubernetes"], dependencies=[Depends(only_known_query_parameters)])

EXAMPLE: dict[str, Any] = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "namespace": "shop",
        "name": "web",
        "operation": "UPDATE",
        "userInfo": {"username": "ci-deployer"},
        "object": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "labels": {"environment": "production"},
                "annotations": {"cortex-change/id": "RFC-20261201210000-1a2b3c"},
            },
            "spec": {},
        },
        "dryRun": False,
    },
}
_WHY = {
    401: "no bearer token, or an unknown, malformed or revoked one",
    422: "not an AdmissionReview admission.k8s.io/v1 (the detail names the field)",
    503: "the store could not be opened or used (failurePolicy Fail: the object is refused)",
}


class AdmissionStatus(BaseModel):
    """Why the object is denied: what `kubectl` prints."""

    code: int = Field(examples=[403])
    message: str


class AdmissionResponse(BaseModel):
    uid: str = Field(description="the request's uid")
    allowed: bool
    status: AdmissionStatus | None = Field(None, description="present when denied")
    warnings: list[str] | None = Field(
        None, description="CHANGE_MGMT_ENABLED=false: allowed, and why (kubectl prints it)"
    )


class AdmissionReviewAnswer(BaseModel):
    """The AdmissionReview the API server expects back."""

    model_config = ConfigDict(populate_by_name=True)

    api_version: str = Field(alias="apiVersion", examples=["admission.k8s.io/v1"])
    kind: str = Field(examples=["AdmissionReview"])
    response: AdmissionResponse


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.context()
    return ctx


@k8s.post(
    "/k8s/admission",
    summary="Kubernetes admission webhook: may this Deployment or StatefulSet be applied now?",
    response_model=AdmissionReviewAnswer,
    response_model_exclude_none=True,
    response_model_by_alias=True,
    responses={c: {"model": schemas.Problem, "description": why} for c, why in _WHY.items()},
)
def admission_review(
    request: Request,
    credentials: Credentials,
    body: Annotated[
        Any,  # checked by domain/admission.py, which names what is malformed
        Body(
            description="an AdmissionReview (admission.k8s.io/v1) as the Kubernetes API server sends it",
            examples=[EXAMPLE],
        ),
    ],
    timeout: Annotated[
        str | None,
        Query(description="the API server's own deadline (e.g. 10s), sent with every call; not used"),
    ] = None,
) -> dict[str, Any]:
    ctx = _ctx(request)
    authenticate(ctx, f"Bearer {credentials.credentials}" if credentials else None)
    return review(ctx, body)
