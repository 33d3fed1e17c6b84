"""Customers, projects, customer users and project followers: services, API, screens and CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api_helpers import HOSTING_USERS, Api, served
from engine.cli import main
from engine.db import connect
from engine.errors import Forbidden, Invalid, NotFound, Refused
from engine.migrate import apply_workspace, plan_for
from engine.runtime import Actor, create_token, load_actor
from engine.runtime.actors import verify_password
from engine.runtime.customers import Customers
from tests.runtime_helpers import EXAMPLES, HOSTING, Env, dump, hosting, make_env  # noqa: F401 - fixture
from web_helpers import Browser, browsing

ACME = {"name": "acme", "label": "ACME Corp", "email_domains": ["acme.example", "ACME-mail.example"],
        "hourly_rate": "95"}


async def _events(env_db: Any, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    rows = await env_db.fetch("SELECT work_order_id, actor_id, kind, before, after, source FROM rc_event "
                              "WHERE work_order_id IS NULL ORDER BY id")
    for row in rows:
        for key in ("before", "after"):
            row[key] = json.loads(row[key]) if isinstance(row[key], str) else row[key]
    return [r for r in rows if kinds is None or r["kind"] in kinds]


async def _setup(env: Env) -> tuple[Customers, Actor]:
    return Customers(env.db, env.workspace), await env.actor("jana.kowalski")


async def test_create_and_change_a_customer_with_audit_events(hosting: Env) -> None:
    customers, jana = await _setup(hosting)
    made = await customers.create(jana, ACME)
    assert made["name"] == "acme" and made["label"] == "ACME Corp" and made["hourly_rate"] == "95.00"
    assert made["email_domains"] == ["acme.example", "acme-mail.example"] and made["declared_in"] is None
    assert made["projects"] == [] and made["without_project"] == {"open_orders": 0, "closed_orders": 0}
    changed = await customers.update(jana, made["id"], {"label": "ACME Corporation", "hourly_rate": None})
    assert changed["label"] == "ACME Corporation" and changed["hourly_rate"] is None
    unchanged = await customers.update(jana, made["id"], {"label": "ACME Corporation"})
    assert unchanged == changed
    events = await _events(hosting.db)
    assert [e["kind"] for e in events] == ["customer_created", "customer_changed"]  # nothing for a no-op
    assert all(e["actor_id"] == jana.id for e in events)
    assert events[1]["before"] == {"customer_id": made["id"], "label": "ACME Corp", "hourly_rate": "95.00"}
    assert events[1]["after"] == {"customer_id": made["id"], "label": "ACME Corporation", "hourly_rate": None}
    assert events[0]["source"] == "customer acme"


async def test_bad_input_is_reported_at_every_field_and_nothing_is_written(hosting: Env) -> None:
    customers, jana = await _setup(hosting)
    first = await customers.create(jana, ACME)
    before = await dump(hosting.db)
    with pytest.raises(Invalid) as bad:
        await customers.create(jana, {"name": "Bad Name", "email_domains": ["ok.example", "no domain"],
                                      "hourly_rate": "12.345", "status": "open"})
    assert {e["field"] for e in bad.value.errors} == {"name", "email_domains.1", "hourly_rate", "status"}
    with pytest.raises(Invalid) as taken:
        await customers.create(jana, {"name": "acme", "email_domains": ["acme.example"]})
    assert {e["field"]: e["message"] for e in taken.value.errors} == {
        "name": "a customer named acme exists already",
        "email_domains.0": "acme.example already belongs to customer acme"}
    with pytest.raises(Invalid) as renamed:
        await customers.update(jana, first["id"], {"name": "acme2", "label": "x" * 201})
    assert {e["field"] for e in renamed.value.errors} == {"name", "label"}
    with pytest.raises(NotFound):
        await customers.update(jana, 999_999, {"label": "x"})
    with pytest.raises(NotFound):
        await customers.get(jana, "1; DROP TABLE rc_customer")
    assert await dump(hosting.db) == before


async def test_projects_are_unique_per_customer_archived_and_counted(hosting: Env) -> None:
    customers, jana = await _setup(hosting)
    acme = await customers.create(jana, ACME)
    beta = await customers.create(jana, {"name": "beta"})
    shop = await customers.create_project(jana, acme["id"], {"name": "web_shop", "label": "Web shop",
                                                             "hourly_rate": "110.5"})
    assert shop["hourly_rate"] == "110.50" and not shop["archived"] and shop["open_orders"] == 0
    with pytest.raises(Invalid) as dup:
        await customers.create_project(jana, acme["id"], {"name": "web_shop"})
    assert dup.value.errors == [{"field": "name", "message": "customer acme has a project named web_shop already"}]
    other = await customers.create_project(jana, beta["id"], {"name": "web_shop"})  # another customer: fine
    assert other["label"] == "web_shop"
    with pytest.raises(NotFound):
        await customers.create_project(jana, 999_999, {"name": "x"})

    for _ in range(2):
        await hosting.rt.create(jana, "hosting_order", {"fields": HOSTING, "customer_id": acme["id"],
                                                        "project_id": shop["id"]})
    loose = await hosting.rt.create(jana, "hosting_order", {"fields": HOSTING, "customer_id": acme["id"]})
    done = await hosting.rt.create(jana, "hosting_order", {"fields": HOSTING, "customer_id": acme["id"],
                                                           "project_id": shop["id"]})
    await hosting.rt.cancel(jana, done["number"], done["version"], reason="test")
    portfolio = await customers.get(jana, acme["id"])
    assert [(p["name"], p["open_orders"], p["closed_orders"]) for p in portfolio["projects"]] == [("web_shop", 2, 1)]
    assert portfolio["without_project"] == {"open_orders": 1, "closed_orders": 0}
    assert loose["customer_id"] == acme["id"]

    archived = await customers.update_project(jana, shop["id"], {"archived": True})
    assert archived["archived"] and archived["open_orders"] == 2  # its work stays
    restored = await customers.update_project(jana, shop["id"], {"archived": False, "label": "Shop"})
    assert not restored["archived"] and restored["label"] == "Shop"
    with pytest.raises(Invalid) as bad:
        await customers.update_project(jana, shop["id"], {"archived": "yes", "hourly_rate": "-1", "name": "x"})
    assert {e["field"] for e in bad.value.errors} == {"archived", "hourly_rate", "name"}
    kinds = [e["kind"] for e in await _events(hosting.db)]
    assert kinds == ["customer_created", "customer_created", "project_created", "project_created",
                     "project_archived", "project_changed"]


async def test_customer_users_sign_in_only_with_a_password_and_follow_their_own_customers_projects(
        hosting: Env) -> None:
    customers, jana = await _setup(hosting)
    acme = await customers.create(jana, ACME)
    beta = await customers.create(jana, {"name": "beta"})
    shop = await customers.create_project(jana, acme["id"], {"name": "web_shop"})
    app = await customers.create_project(jana, acme["id"], {"name": "app"})
    elsewhere = await customers.create_project(jana, beta["id"], {"name": "site"})
    kim = await customers.create_user(jana, acme["id"], {"login": "kim", "email": "kim@acme.example"})
    assert kim == {"id": kim["id"], "customer_id": acme["id"], "login": "kim", "name": "kim",
                   "email": "kim@acme.example", "active": True, "can_sign_in": False, "follows": []}
    row = (await hosting.db.fetch("SELECT is_staff, customer_id, password_hash FROM rc_user WHERE id = {}",
                                  kim["id"]))[0]
    assert not row["is_staff"] and row["customer_id"] == acme["id"] and row["password_hash"] is None
    with pytest.raises(Invalid) as bad:
        await customers.create_user(jana, acme["id"], {"login": "KIM", "email": "nope", "password": "short"})
    assert {e["field"] for e in bad.value.errors} == {"login", "email", "password"}

    with_password = await customers.update_user(jana, acme["id"], kim["id"], {"password": "correct horse"})
    assert with_password["can_sign_in"]
    stored = await hosting.db.fetch_value("SELECT password_hash FROM rc_user WHERE id = {}", kim["id"])
    assert verify_password("correct horse", stored)

    followed = await customers.follow(jana, shop["id"], kim["id"])
    assert followed["follows"] == [shop["id"]]
    assert await customers.follow(jana, shop["id"], kim["id"]) == followed  # again: no change, no event
    before = await dump(hosting.db)
    with pytest.raises(Invalid) as foreign:
        await customers.follow(jana, elsewhere["id"], kim["id"])
    assert foreign.value.errors == [
        {"field": "user_id", "message": "kim may follow only projects of their own customer"}]
    with pytest.raises(Invalid) as staff:
        await customers.follow(jana, shop["id"], jana.id)
    assert staff.value.errors[0]["field"] == "user_id"
    await customers.update_project(jana, app["id"], {"archived": True})
    archived_state = await dump(hosting.db)
    with pytest.raises(Invalid) as archived:
        await customers.follow(jana, app["id"], kim["id"])
    assert archived.value.errors == [{"field": "project_id", "message": "project app is archived"}]
    with pytest.raises(NotFound):
        await customers.follow(jana, 999_999, kim["id"])
    with pytest.raises(NotFound):
        await customers.update_user(jana, beta["id"], kim["id"], {"active": False})  # not beta's user
    assert await dump(hosting.db) == archived_state
    assert before != archived_state  # only the archiving changed something

    assert [u["login"] for u in await customers.followers(jana, shop["id"])] == ["kim"]
    gone = await customers.unfollow(jana, shop["id"], kim["id"])
    assert gone["follows"] == [] and await customers.followers(jana, shop["id"]) == []
    off = await customers.update_user(jana, acme["id"], kim["id"], {"active": False})
    assert not off["active"] and not off["can_sign_in"]
    with pytest.raises(NotFound):
        await load_actor(hosting.db, hosting.workspace, id=kim["id"])  # sessions and tokens stop working
    kinds = [e["kind"] for e in await _events(hosting.db) if e["kind"] not in ("customer_created", "project_created")]
    assert kinds == ["customer_user_created", "customer_user_changed", "project_followed", "project_archived",
                     "project_unfollowed", "customer_user_deactivated"]
    created = next(e for e in await _events(hosting.db, ("customer_user_created",)))
    assert created["after"]["password"] is None and "correct horse" not in json.dumps(await _events(hosting.db))


async def test_only_managers_manage_and_customer_users_see_nothing(hosting: Env) -> None:
    customers, jana = await _setup(hosting)
    acme = await customers.create(jana, ACME)
    beta = await customers.create(jana, {"name": "beta"})
    shop = await customers.create_project(jana, acme["id"], {"name": "web_shop"})
    site = await customers.create_project(jana, beta["id"], {"name": "site"})
    kim_id = (await customers.create_user(jana, acme["id"], {"login": "kim"}))["id"]
    await customers.create_user(jana, beta["id"], {"login": "bo"})
    kim = await load_actor(hosting.db, hosting.workspace, id=kim_id)
    ben = await hosting.actor("ben.otto")  # billing: no customer.manage
    before = await dump(hosting.db)
    for call in (customers.create(ben, {"name": "gamma"}), customers.get(ben, acme["id"]),
                 customers.update(ben, acme["id"], {"label": "x"}), customers.users(ben, acme["id"]),
                 customers.follow(ben, shop["id"], kim_id)):
        with pytest.raises(Forbidden):
            await call
    # to a customer user, their own customer looks exactly like one that does not exist
    for own, missing in ((customers.get(kim, acme["id"]), customers.get(jana, 999_999)),
                         (customers.projects(kim, acme["id"]), customers.projects(jana, 999_999))):
        with pytest.raises(NotFound) as seen:
            await own
        with pytest.raises(NotFound) as unknown:
            await missing
        assert seen.value.detail.split()[:2] == unknown.value.detail.split()[:2] == ["no", "customer"]
    for call in (customers.create(kim, {"name": "gamma"}), customers.update_project(kim, shop["id"], {"label": "x"}),
                 customers.follow(kim, site["id"], kim_id), customers.follow(kim, shop["id"], jana.id)):
        with pytest.raises(NotFound):
            await call
    assert await dump(hosting.db) == before
    # a customer user may follow their own customer's projects for themselves
    assert (await customers.follow(kim, shop["id"], kim_id))["follows"] == [shop["id"]]
    assert (await customers.unfollow(kim, shop["id"], kim_id))["follows"] == []


async def test_declared_customers_are_read_only_and_apply_keeps_what_the_ui_added(database_url: str) -> None:
    env = await make_env(EXAMPLES / "contract-agency", database_url)
    try:
        customers = Customers(env.db, env.workspace)
        rachel = await env.actor("rachel.morgan")  # account_manager: customer.manage
        acme_id = int(await env.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", "acme_logistics"))
        acme = await customers.get(rachel, acme_id)
        place = env.workspace.locations["Customer"]["acme_logistics"]
        assert acme["declared_in"] == str(place) and place.path.endswith("customers.yaml")
        declared = next(p for p in acme["projects"] if p["name"] == "web_shop")
        assert declared["declared_in"] == str(place)
        before = await dump(env.db)
        with pytest.raises(Refused) as refused:
            await customers.update(rachel, acme_id, {"label": "Renamed"})
        assert f"declared in {place}" in refused.value.detail
        with pytest.raises(Refused):
            await customers.update_project(rachel, declared["id"], {"archived": True})
        assert await dump(env.db) == before
        extra = await customers.create_project(rachel, acme_id, {"name": "data_migration", "hourly_rate": "99"})
        assert extra["declared_in"] is None
        changed = await customers.update_project(rachel, extra["id"], {"label": "Data migration"})
        user = await customers.create_user(rachel, acme_id, {"login": "ops@acme", "password": "correct horse"})
        await customers.follow(rachel, declared["id"], user["id"])
        plan = await plan_for(env.workspace, database_url)
        assert plan.up_to_date, plan.steps  # nothing the UI added makes apply want to change anything
        await apply_workspace(env.workspace, database_url)
        again = await customers.get(rachel, acme_id)
        kept = next(p for p in again["projects"] if p["name"] == "data_migration")
        assert kept["label"] == changed["label"] == "Data migration" and kept["hourly_rate"] == "99.00"
        assert next(p for p in again["projects"] if p["name"] == "web_shop")["followers"] == [user["id"]]
    finally:
        await env.db.close()


# -- the API -------------------------------------------------------------------------------------------


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async with served("hosting-orders", database_url, HOSTING_USERS) as api:
        yield api


async def test_api_round_trip(api: Api) -> None:
    made = await api.post("jana.kowalski", "/api/customers", ACME)
    assert made.status_code == 201, made.text
    acme = made.json()
    assert acme["name"] == "acme" and acme["projects"] == []
    patched = await api.patch("jana.kowalski", f"/api/customers/{acme['id']}", {"hourly_rate": "80"})
    assert patched.status_code == 200 and patched.json()["hourly_rate"] == "80.00"
    project = await api.post("jana.kowalski", f"/api/customers/{acme['id']}/projects", {"name": "web_shop"})
    assert project.status_code == 201, project.text
    shop = project.json()
    user = await api.post("jana.kowalski", f"/api/customers/{acme['id']}/users",
                          {"login": "kim", "password": "correct horse", "email": "kim@acme.example"})
    assert user.status_code == 201, user.text
    kim = user.json()
    assert kim["can_sign_in"] and "password" not in kim
    follow = await api.post("jana.kowalski", f"/api/projects/{shop['id']}/followers/{kim['id']}")
    assert follow.status_code == 200 and follow.json()["follows"] == [shop["id"]]
    listed = (await api.get("jana.kowalski", f"/api/customers/{acme['id']}/projects")).json()
    assert listed[0]["followers"] == [kim["id"]]
    users = (await api.get("jana.kowalski", f"/api/customers/{acme['id']}/users")).json()
    assert [u["login"] for u in users] == ["kim"]
    archived = await api.patch("jana.kowalski", f"/api/projects/{shop['id']}", {"archived": True})
    assert archived.status_code == 200 and archived.json()["archived"]
    unfollow = await api.client.delete(f"/api/projects/{shop['id']}/followers/{kim['id']}",
                                       headers=api.auth("jana.kowalski"))
    assert unfollow.status_code == 200 and unfollow.json()["follows"] == []
    deactivated = await api.patch("jana.kowalski", f"/api/customers/{acme['id']}/users/{kim['id']}", {"active": False})
    assert deactivated.status_code == 200 and not deactivated.json()["active"]
    found = (await api.get("jana.kowalski", "/api/customers", params={"q": "acme.example"})).json()
    assert [c["name"] for c in found] == ["acme"]


async def test_api_errors_name_their_fields_and_customers_get_404(api: Api) -> None:
    acme = (await api.post("jana.kowalski", "/api/customers", ACME)).json()
    other = (await api.post("jana.kowalski", "/api/customers", {"name": "beta"})).json()
    before = await dump(api.db)
    bad = await api.post("jana.kowalski", "/api/customers", {"name": "Bad", "email_domains": ["x"], "hourly_rate": "a"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"name", "email_domains.0", "hourly_rate"}
    mass = await api.patch("jana.kowalski", f"/api/customers/{acme['id']}", {"name": "renamed"})
    assert mass.status_code == 422 and mass.json()["errors"][0]["field"] == "name"
    wrong_type = await api.patch("jana.kowalski", f"/api/customers/{acme['id']}", {"email_domains": "acme.example"})
    assert wrong_type.status_code == 422 and wrong_type.json()["errors"][0]["field"] == "email_domains"
    assert (await api.get("ben.otto", f"/api/customers/{acme['id']}")).status_code == 403
    assert (await api.post("ben.otto", "/api/customers", {"name": "gamma"})).status_code == 403
    assert await dump(api.db) == before

    kim = (await api.post("jana.kowalski", f"/api/customers/{acme['id']}/users",
                          {"login": "kim", "password": "correct horse"})).json()
    login = await api.client.post("/api/session", json={"login": "kim", "password": "correct horse"})
    assert login.status_code == 201  # a customer user with a password signs in
    api.client.cookies.clear()
    api.tokens["kim"] = await create_token(api.db, kim["id"], "tests")
    own = await api.get("kim", f"/api/customers/{acme['id']}")
    missing = await api.get("jana.kowalski", "/api/customers/999999")
    assert own.status_code == missing.status_code == 404
    for url in (f"/api/customers/{acme['id']}/projects", f"/api/customers/{acme['id']}/users",
                f"/api/customers/{other['id']}"):
        assert (await api.get("kim", url)).status_code == 404
    assert (await api.post("kim", "/api/customers", {"name": "gamma"})).status_code == 404
    searched = (await api.get("kim", "/api/customers")).json()
    assert [c["name"] for c in searched] == ["acme"]  # the search keeps showing a customer user their own
    assert kim["customer_id"] == acme["id"]


async def test_openapi_describes_the_customer_routes(api: Api) -> None:
    document = (await api.client.get("/schema/openapi.json")).json()
    paths = document["paths"]
    for path, methods in {"/api/customers": {"get", "post"}, "/api/customers/{customer}": {"get", "patch"},
                          "/api/customers/{customer}/projects": {"get", "post"},
                          "/api/customers/{customer}/users": {"get", "post"},
                          "/api/customers/{customer}/users/{user}": {"patch"},
                          "/api/projects/{project}": {"patch"},
                          "/api/projects/{project}/followers/{user}": {"post", "delete"}}.items():
        assert methods <= set(paths[path]), path
    schemas = document["components"]["schemas"]
    create = paths["/api/customers"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(schemas[create.rsplit("/", 1)[1]]["properties"]) == {"name", "label", "email_domains", "hourly_rate"}
    answer = paths["/api/customers/{customer}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "projects" in schemas[answer["$ref"].rsplit("/", 1)[1]]["properties"]


# -- the screens ---------------------------------------------------------------------------------------


@pytest.fixture
async def shop(database_url: str) -> AsyncIterator[Browser]:
    async with browsing("hosting-orders", database_url, HOSTING_USERS) as browser:
        await browser.sign_in("jana.kowalski")
        await browser.sign_in("ben.otto")
        yield browser


async def test_staff_manage_customers_on_the_screens(shop: Browser) -> None:
    listed = await shop.get("jana.kowalski", "/customers")
    assert listed.status_code == 200 and 'href="/customers" aria-current="page"' in listed.text
    bad = await shop.post("jana.kowalski", "/customers", {"name": "Bad Name", "email_domains": "acme.example, nope"})
    assert bad.status_code == 422
    assert 'id="customer-new-name-error"' in bad.text and 'id="customer-new-email_domains-error"' in bad.text
    assert 'value="Bad Name"' in bad.text  # what was typed stays
    made = await shop.post("jana.kowalski", "/customers", {"name": "acme", "label": "ACME <Corp>",
                                                          "email_domains": "acme.example acme.test"})
    assert made.status_code == 204, made.text
    target = made.headers["hx-redirect"]
    customer_id = int(target.rsplit("/", 1)[1])
    made_project = await shop.post("jana.kowalski", f"{target}/projects", {"name": "web_shop", "label": "Web shop"})
    assert made_project.status_code == 204
    assert (await shop.post("jana.kowalski", f"{target}/users", {"login": "kim", "name": "Kim"})).status_code == 204
    dup = await shop.post("jana.kowalski", f"{target}/projects", {"name": "web_shop"})
    assert dup.status_code == 422 and "web_shop already" in dup.text and 'id="project-new-name-error"' in dup.text
    page = (await shop.get("jana.kowalski", target)).text
    assert "ACME &lt;Corp&gt;" in page and 'data-project="web_shop"' in page and 'data-user="kim"' in page
    assert "no password yet" in page
    project_id = int(await shop.api.db.fetch_value("SELECT id FROM rc_project WHERE name = {}", "web_shop"))
    kim_id = int(await shop.api.db.fetch_value("SELECT id FROM rc_user WHERE login = {}", "kim"))
    followed = await shop.post("jana.kowalski", f"{target}/projects/{project_id}/followers", {"user_id": str(kim_id)})
    assert followed.status_code == 204
    page = (await shop.get("jana.kowalski", target)).text
    assert f"/projects/{project_id}/followers/{kim_id}/remove" in page
    archived = await shop.post("jana.kowalski", f"{target}/projects/{project_id}", {"archived": "yes"})
    assert archived.status_code == 204
    assert await shop.api.db.fetch_value("SELECT archived_at FROM rc_project WHERE id = {}", project_id) is not None
    other = (await shop.post("jana.kowalski", "/customers", {"name": "beta"})).headers["hx-redirect"]
    assert (await shop.post("jana.kowalski", f"{other}/projects/{project_id}", {"label": "x"})).status_code == 404
    assert customer_id != int(other.rsplit("/", 1)[1])

    set_password = await shop.post("jana.kowalski", f"{target}/users/{kim_id}", {"password": "correct horse"})
    assert set_password.status_code == 204
    await shop.sign_in("kim")  # a customer user: the pages do not exist for them
    assert (await shop.get("kim", "/customers")).status_code == 404
    assert (await shop.get("kim", target)).status_code == 404
    assert (await shop.post("kim", f"{target}/users", {"login": "eve"})).status_code == 404
    assert (await shop.get("ben.otto", "/customers")).status_code == 403
    assert (await shop.get("ben.otto", target)).status_code == 403
    assert 'href="/customers"' not in (await shop.get("ben.otto", "/manager")).text


# -- the CLI -------------------------------------------------------------------------------------------


def test_users_add_customer_makes_a_customer_user(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    root = EXAMPLES / "contract-agency"
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["apply", str(root), "--db", db]) == 0
    capsys.readouterr()
    assert main(["users", "add", "ops@acme", "--customer", "acme_logistics", "--email", "ops@acme-logistics.example",
                 "-w", str(root), "--db", db]) == 0
    assert "customer user of acme_logistics" in capsys.readouterr().out
    assert main(["users", "add", "x", "--customer", "nobody", "-w", str(root), "--db", db]) == 1
    assert "customer: no customer named nobody" in capsys.readouterr().err
    assert main(["users", "add", "y", "--customer", "acme_logistics", "--group", "design",
                 "-w", str(root), "--db", db]) == 2
    assert main(["users", "add", "ops@acme", "--customer", "bloom_florists", "-w", str(root), "--db", db]) == 1
    assert "login: the login ops@acme is taken" in capsys.readouterr().err

    async def check() -> None:
        database = await connect(db)
        try:
            rows = await database.fetch(
                "SELECT u.is_staff, u.password_hash, c.name FROM rc_user u JOIN rc_customer c ON c.id = u.customer_id "
                "WHERE u.login = {}", "ops@acme")
            assert rows and not rows[0]["is_staff"] and rows[0]["name"] == "acme_logistics"
            assert rows[0]["password_hash"] is None
            kinds = [r["kind"] for r in await database.fetch("SELECT kind FROM rc_event WHERE work_order_id IS NULL")]
            assert kinds == ["customer_user_created"]
        finally:
            await database.close()

    asyncio.run(check())
