"""Dashboards: open work by queue and step, ageing, throughput per group, SLA compliance, time per customer.

Each chart is server-rendered SVG (``charts``) with the table of its numbers right under
it (a ``<details>`` one click away), both built from the same series. Every figure is
scoped to what the viewer may see: the work orders of their templates, the time entries
of the timesheets (``engine.runtime.reports``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from engine.errors import NotFound
from engine.runtime import Actor
from engine.runtime.dashboards import ageing, sla_compliance, throughput, time_per_customer
from engine.runtime.reports import hours
from engine.runtime.state import now
from engine.runtime.views import counts

from ..deps import RuntimeDep
from .charts import bar_chart, column_chart
from .common import page_for, show
from .render import N_

AGE_WORDS = (N_("< 1 day"), N_("1–3 days"), N_("3–7 days"), N_("7–30 days"), N_("> 30 days"))
"""The ageing buckets' labels (``dashboards.AGE_BUCKETS``), for the catalogues."""


@get("/dashboards", include_in_schema=False)
async def dashboards(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """Every chart of the dashboards page, each with its numbers."""
    actor = request.user
    if not actor.is_staff:
        raise NotFound("no such page")
    page = page_for(request, runtime)
    at = now()
    open_work = await counts(runtime, actor, final=False)
    queues = runtime.workspace.queues
    steps = [(f"{page.label(queues[q].label, q)} › {page.step_label(q, s)}", float(n))
             for q, data in open_work["queues"].items() if q in queues for s, n in data["steps"].items()]
    aged = [{**b, "bucket": page.gettext(b["bucket"])} for b in await ageing(runtime, actor, at)]
    flow = await throughput(runtime, actor, at)
    groups = runtime.workspace.groups
    flow_series = [(_group_label(page, groups[g].label if g in groups else None, g),
                    [float(n) for n in per.values()]) for g, per in flow["groups"].items()]
    spent = await time_per_customer(runtime, actor, at)
    sla = await sla_compliance(runtime, actor, at)
    charts: list[dict[str, Any]] = [
        {"id": "open-work", "title": page.gettext("Open work by queue and step"),
         "svg": bar_chart(page.gettext("Open work by queue and step"), steps, chart_id="open-work"),
         "head": (page.gettext("Queue › step"), page.gettext("Open work orders")),
         "rows": [(label, int(n)) for label, n in steps]},
        {"id": "ageing", "title": page.gettext("Age of open work"),
         "svg": bar_chart(page.gettext("Age of open work"), [(b["bucket"], float(b["orders"])) for b in aged],
                          chart_id="ageing"),
         "head": (page.gettext("Age"), page.gettext("Open work orders")),
         "rows": [(b["bucket"], b["orders"]) for b in aged]},
        {"id": "throughput", "title": page.gettext("Completed per week and group"),
         "svg": column_chart(page.gettext("Completed per week and group"), flow["weeks"], flow_series,
                             chart_id="throughput"),
         "head": (page.gettext("Group"), *flow["weeks"]),
         "rows": [(name, *(int(v) for v in values)) for name, values in flow_series]},
        {"id": "time", "title": page.gettext("Hours per customer"),
         "svg": bar_chart(page.gettext("Hours per customer"),
                          [(c["customer"] or page.gettext("(no customer)"), float(hours(c["minutes"]))) for c in spent],
                          unit=" h", chart_id="time"),
         "head": (page.gettext("Customer"), page.gettext("Hours"), page.gettext("Billable hours")),
         "rows": [(c["customer"] or page.gettext("(no customer)"), hours(c["minutes"]), hours(c["billable_minutes"]))
                  for c in spent]},
    ]
    if sla is not None:
        weeks = sla["weeks"]
        charts.append({
            "id": "sla", "title": page.gettext("SLA met, per week of completion"),
            "svg": column_chart(page.gettext("SLA met, per week of completion"), weeks, [
                (page.gettext("met"), [float(sla["met"][w]) for w in weeks]),
                (page.gettext("breached"), [float(sla["completed"][w] - sla["met"][w]) for w in weeks])],
                chart_id="sla"),
            "head": (page.gettext("Week"), page.gettext("Completed under an SLA"), page.gettext("Met"), "%"),
            "rows": [(w, sla["completed"][w], sla["met"][w], "—" if sla["percent"][w] is None else sla["percent"][w])
                     for w in weeks]})
    return show(request, runtime, "dashboards.html", charts=charts)


def _group_label(page: Any, label: str | dict[str, str] | None, name: str) -> str:
    if isinstance(label, str):
        return label
    return str(page.label(label, name)) if label else (name or page.gettext("(none)"))
