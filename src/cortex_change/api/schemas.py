"""Request bodies. Field names are SPEC §1's; the domain validates values (one wording)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewChange(Body):
    type: str = Field(examples=["normal"])
    category: str = Field(examples=["deployment"])
    title: str = Field(examples=["Deploy new feature X"])
    description: str = ""
    impact: str = "medium"
    urgency: str = "medium"
    affected_services: list[str] = []
    affected_cis: list[str] = []
    dependencies: list[str] = []
    implementation_plan: dict[str, Any] | None = None
    rollback_plan: dict[str, Any] | None = None
    test_plan: dict[str, Any] | None = None
    environment: str | None = None
    tested_in_staging: str | None = None
    standard_model: str | None = None
    parameters: dict[str, Any] = {}


class Assess(Body):
    reassess: bool = False


class Decide(Body):
    reason: str = Field(examples=["Approved for deployment"])
    role: str | None = None


class Close(Body):
    status: str = Field(examples=["successful"])
    notes: str = ""


class Cancel(Body):
    reason: str = ""


class Review(Body):
    outcome: str = Field(examples=["accepted"])
    notes: str = ""


class Integrate(Body):
    details: str | dict[str, Any] | None = None
    args: list[str] = []
