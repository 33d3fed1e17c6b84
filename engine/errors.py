"""The engine's exceptions: a small tree, each with a ``detail`` for people."""

from __future__ import annotations

from .diagnostics import Diagnostic, sort_diagnostics


class RoutecardError(Exception):
    """Base of every error Routecard reports to a person."""

    exit_code = 1

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UsageError(RoutecardError):
    """A command was called wrongly (bad option, missing folder, bad database URL)."""

    exit_code = 2


class DefinitionError(RoutecardError):
    """The workspace's definitions have errors; ``diagnostics`` lists every one."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sort_diagnostics(diagnostics)
        errors = sum(1 for d in self.diagnostics if d.severity == "error")
        super().__init__(f"{errors} error{'s' if errors != 1 else ''} in the definitions")


class PlanRefused(RoutecardError):
    """A migration plan cannot be applied as it stands; ``reasons`` say why."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("the plan cannot be applied:\n" + "\n".join(f"  - {r}" for r in reasons))


class DatabaseError(RoutecardError):
    """The database could not be reached or is not in the state Routecard expects."""


class ServiceError(RoutecardError):
    """A request to the runtime was refused; nothing was changed.

    ``code`` is stable for programs; ``errors`` lists problems by field path
    (``fields.quantity``, ``version``), each ``{"field": ..., "message": ...}``.
    """

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class NotFound(ServiceError):
    """The thing does not exist, or the caller may not know that it does."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The caller may not do this."""

    status = 403
    code = "forbidden"


class Invalid(ServiceError):
    """The input breaks the definitions: unknown fields, wrong types, missing required values."""

    status = 422
    code = "invalid"


class BadQuery(ServiceError):
    """A list was asked for with an unknown sort key, filter, page size or cursor (never put into SQL)."""

    status = 400
    code = "bad_query"


class Refused(ServiceError):
    """The workflow does not allow this now (a cancelled order, an action already done, ...)."""

    status = 409
    code = "refused"


class Conflict(ServiceError):
    """The work order changed since the caller read it: ``changed`` names what changed."""

    status = 409
    code = "conflict"

    def __init__(self, detail: str, current_version: int, changed: list[str]) -> None:
        super().__init__(detail, [{"field": "version", "message": detail}])
        self.current_version = current_version
        self.changed = changed
