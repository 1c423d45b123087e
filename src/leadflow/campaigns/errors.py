"""Why a change to a campaign is refused."""

from __future__ import annotations

from leadflow.kit.errors import DomainError, FieldProblem


class CampaignArchived(DomainError):
    problem_code = "archived"
    default_detail = "The campaign is archived and cannot be changed."


class CampaignInactive(DomainError):
    problem_code = "campaign_inactive"
    default_detail = "Activate the campaign first."


class CampaignEnded(DomainError):
    problem_code = "campaign_ended"
    default_detail = "The campaign has ended."


class NoVariants(DomainError):
    problem_code = "no_variants"
    default_detail = "The campaign has no follow-ups yet."


class LastVariant(DomainError):
    problem_code = "last_variant"
    default_detail = "An active campaign needs at least one variant: deactivate it first."


class NameTaken(DomainError):
    problem_code = "name_taken"
    default_detail = "The name is already used."

    def __init__(self, detail: str, *, message: str) -> None:
        super().__init__(detail, errors=[FieldProblem(field="name", message=message)])


class ConcurrentChange(DomainError):
    problem_code = "conflict"
    default_detail = "A concurrent change conflicted; retry."


class TemplateNotRenderable(DomainError):
    http_status = 422
    problem_code = "template_error"
    default_detail = "The template cannot be rendered."
