"""One create route per template, built from the definitions before the app starts.

Each route's body type embeds the template's custom-field Struct (``FieldCodec.struct``)
so the OpenAPI document shows every template's fields. The service checks the body as
sent (every field problem at once) before the strict shape is decoded.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Router, post
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException
from litestar.params import BodyKwarg, FromPath, HeaderParameter
from msgspec import Meta

from engine.errors import Invalid, NotFound
from engine.link.resolved import ResolvedTemplate
from engine.runtime import Actor, Runtime
from engine.runtime.fields import FieldCodec

from ..deps import RuntimeDep
from .bodies import Id, Priority


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


def create_struct(template: ResolvedTemplate, fields: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """The body of ``POST /api/templates/<template>/orders``."""
    queue: Any = Literal.__getitem__(template.queues)  # Literal["q1", "q2", ...], built at runtime
    return msgspec.defstruct(
        f"{_camel(template.name)}Create",
        [
            ("fields", fields | None, None),
            ("title", Annotated[str, Meta(max_length=300)] | None, None),
            ("priority", Priority | None, None),
            ("customer_id", Id | None, None),
            ("project_id", Id | None, None),
            ("requested_at", dt.datetime | None, None),
            ("planned_at", dt.datetime | None, None),
            ("queue", queue | None, None),
        ],
        kw_only=True,
        forbid_unknown_fields=True,
    )


def order_struct(template: ResolvedTemplate, fields: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """The work order as the API shows it, with this template's fields (for the OpenAPI document)."""
    optional_text = str | None
    return msgspec.defstruct(
        f"{_camel(template.name)}Order",
        [("number", str), ("template", str), ("queue", str), ("step", str), ("status", str), ("priority", str),
         ("title", str), ("owner", optional_text), ("group", optional_text), ("customer_id", int | None),
         ("project_id", int | None), ("created_by", optional_text), ("created_at", str),
         ("updated_at", optional_text), ("requested_at", optional_text), ("planned_at", optional_text),
         ("completed_at", optional_text), ("cancelled_at", optional_text), ("version", int),
         ("path", list[str]), ("fields", fields), ("actions", list[dict[str, Any]]), ("next", list[str]),
         ("returns", list[str])],
        kw_only=True,
    )


async def _body(request: Request[Actor, Any, Any], runtime: Runtime, template: str) -> dict[str, Any]:
    """The body as sent, for the service to check.

    The service checks keys and fields against the definitions served now
    (``runtime.codecs``), not those the route was built from, so an applied change counts
    from the next request on, and it reports every problem at once. (Read here rather than
    by Litestar into the route's Struct, which would stop at the first problem.)
    """
    if template not in runtime.codecs:
        raise NotFound(f"no template {template}")
    try:  # the body is required, as documented: `{}` for a work order with default values
        data = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise ClientException("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object", [{"field": "body", "message": "expected an object"}])
    return data


def template_router(template: ResolvedTemplate, codec: FieldCodec) -> Router:
    """The router holding ``POST /api/templates/<name>/orders`` for one template."""
    body_type = create_struct(template, codec.struct)
    result_type = order_struct(template, codec.struct)
    name = template.name
    label = next(iter(template.label.values()), name)

    async def create_order(
        request: Request[Actor, Any, Any],
        runtime: RuntimeDep,
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=200)] = None,
    ) -> dict[str, Any]:
        return await runtime.create(request.user, name, await _body(request, runtime, name), idempotency_key)

    def documented_body(data: Any) -> None:
        """Never called: it carries the body's shape into the OpenAPI document (Litestar reads a
        dependency's ``data``). The body itself is read by ``_body`` and checked against the definitions
        served at the time, so fields added or changed by a later ``apply`` are accepted."""

    # The runtime-built types go in after the fact: the body and answer shapes of this template.
    body: Any = Annotated[body_type, BodyKwarg(media_type=RequestEncodingType.JSON)]  # JSONBody[body_type]
    documented_body.__annotations__.update({"data": body})
    create_order.__annotations__.update({"return": result_type})
    handler = post(
        "/orders", status_code=201, operation_id=f"create_{name}", summary=f"Create a {label} work order",
        description=f"Creates a work order of template `{name}` in its queue "
                    f"({', '.join(template.queues)}). The same `Idempotency-Key` returns the same order.",
        tags=["orders"],
        dependencies={"documented_body": Provide(documented_body, sync_to_thread=False)},
    )(create_order)
    return Router(path=f"/api/templates/{name}", route_handlers=[handler])


@post("/api/templates/{template:str}/orders", status_code=201, include_in_schema=False)
async def create_order_of_new_template(
    request: Request[Actor, Any, Any],
    runtime: RuntimeDep,
    template: FromPath[str],
    idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=200)] = None,
) -> dict[str, Any]:
    """Create a work order of a template added by definitions applied after the server started.

    Templates known at start have their own route (with their fields in the OpenAPI
    document); this one serves the others until the next restart documents them too.
    """
    return await runtime.create(request.user, template, await _body(request, runtime, template), idempotency_key)
