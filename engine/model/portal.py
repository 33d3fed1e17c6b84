"""Customers, their projects, order forms and the customer portal."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from .automation import Condition
from .common import Definition, Identity, Label, describe


class FormField(Definition, frozen=True, kw_only=True):
    """A template field placed on a form page, optionally shown or required by a condition."""

    field: Annotated[Identity, describe("The template field asked for.")]
    required: Annotated[bool | None, describe("Overrides whether the field must be filled in.")] = None
    show_if: Annotated[Condition | None, describe("Shown only when this holds for the answers so far.")] = None
    require_if: Annotated[Condition | None, describe("Required only when this holds.")] = None


class FormPage(Definition, frozen=True, kw_only=True):
    """One page of a multi-page form."""

    name: Identity
    label: Annotated[Label | None, describe("The page's title.")] = None
    help: Annotated[Label | None, describe("Text shown at the top of the page.")] = None
    fields: Annotated[
        tuple[Identity | FormField, ...],
        describe("The fields on this page: names, or a field with conditions.", min_length=1),
    ]


class Form(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Form"):
    """A multi-page order form; a submission becomes a work order."""

    name: Identity
    label: Annotated[Label | None, describe("The form's title.")] = None
    description: Annotated[Label | None, describe("Text shown above the form.")] = None
    template: Annotated[Identity, describe("The template of the work order a submission creates.")]
    queue: Annotated[Identity | None, describe("The queue it enters (default: the queue serving the template).")] = None
    access: Annotated[
        Literal["public", "customer", "staff"],
        describe("public: anyone; customer: logged-in customers; staff: agents only."),
    ] = "customer"
    pages: Annotated[tuple[FormPage, ...], describe("The pages, in order.", min_length=1)]
    summary: Annotated[bool, describe("Show a summary page marking complete and incomplete pages.")] = True
    remark: Annotated[bool, describe("Offer a free remark before submitting.")] = True
    choose_project: Annotated[bool, describe("Let the customer choose one of their projects.")] = False
    notify: Annotated[tuple[Identity, ...], describe("Groups told of each new submission.")] = ()


Visibility = Literal["own", "organisation", "followed_projects"]


class Portal(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Portal"):
    """The customer portal: who may log in and what a customer sees."""

    name: Identity
    label: Annotated[Label | None, describe("The portal's title.")] = None
    login: Annotated[
        Literal["required", "optional"],
        describe("required: only logged-in customers; optional: public forms work without login."),
    ] = "required"
    visibility: Annotated[
        tuple[Visibility, ...],
        describe(
            "What a customer user sees: own (their requests), organisation (their customer's), "
            "followed_projects (work in projects they follow)."
        ),
    ] = ("own",)
    forms: Annotated[tuple[Identity, ...], describe("The forms offered in the portal.")] = ()
    templates: Annotated[
        tuple[Identity, ...], describe("Work orders of these templates are shown (default: all).")
    ] = ()
    chat: Annotated[bool, describe("Customers may chat with staff about running orders.")] = True


Rate = Annotated[str, Meta(pattern=r"^\d{1,9}(\.\d{1,2})?$")]


class Project(Definition, frozen=True, kw_only=True):
    """A customer's project."""

    name: Identity
    label: Annotated[Label | None, describe("The project's name as people read it.")] = None
    hourly_rate: Annotated[
        Rate | None,
        describe("Billing rate per hour for this project, e.g. '95.00'."),
    ] = None


class Customer(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Customer"):
    """A customer organisation and its projects; created or updated when definitions are applied."""

    name: Identity
    label: Annotated[Label | None, describe("The customer's name as people read it.")] = None
    email_domains: Annotated[
        tuple[Annotated[str, describe("A mail domain.", pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")], ...],
        describe("Mail from these domains belongs to this customer."),
    ] = ()
    hourly_rate: Annotated[
        Rate | None,
        describe("Default billing rate per hour, e.g. '80.00'."),
    ] = None
    projects: Annotated[tuple[Project, ...], describe("The customer's projects.")] = ()
