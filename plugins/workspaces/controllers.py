"""Workspace pages (intranet): list, create, home, members, join requests, announcements, wiki pages.

Every handler needs the intranet (``intranet.access``) and then checks the user's standing in the workspace
on the server: a private workspace answers 404 to anyone who is not a member (on every URL, whatever the
method), an open one is read-only to non-members, and each action needs its role (``ROLE_ACTIONS``).
Membership is read on every request, so removing a member cuts their access at once.
"""

from __future__ import annotations

from typing import Any

from concelho.suite.auth.guards import NO_PERMISSION, intranet_required
from concelho.suite.content.markdown import render_markdown
from concelho.suite.content.service import ContentError, diff_revisions, restore, revisions
from concelho.suite.i18n import N_
from concelho.suite.models import User
from concelho.suite.render import is_fragment_request, render
from concelho.suite.users import UserError, get_user
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ROLES, Workspace
from .plugin import PAGE
from .services import (
    ROLE_LABELS,
    VERB_LABELS,
    Access,
    WorkspaceError,
    access,
    add_comment,
    announcements,
    answer_request,
    can_create,
    check_announcement,
    check_comment,
    comments,
    create_workspace,
    format_when,
    get_announcement,
    get_page,
    join_requests,
    log_activity,
    member_counts,
    members,
    mentioned_users,
    my_workspaces,
    open_workspaces,
    post_announcement,
    recent_activity,
    remove_member,
    request_to_join,
    save_page,
    set_member,
    thread_participants,
    validate_new_workspace,
    wiki_pages,
    workspace_by_slug,
)

BASE = "/intranet/espacos"
NOT_A_USER = N_("There is no active user with this username.")
LAST_OWNER = N_("A workspace must keep at least one owner.")
ALREADY_MEMBER = N_("This person is already a member.")
REQUEST_GONE = N_("This request no longer exists.")


def plugin_settings(request: Request) -> dict[str, Any]:
    state = request.app.state.suite
    return state.plugin_settings("workspaces")


async def load_space(request: Request, db: AsyncSession, slug: str) -> Access:
    """The user's standing in workspace ``slug``; 404 when it does not exist or they may not read it.

    The result is also left on the request (``state["workspace_access"]``) for page slots such as
    ``workspace_sidebar``, whose renderers only receive the request.
    """
    ws = await workspace_by_slug(db, slug)
    if ws is None:
        raise NotFoundException()
    user = request.scope["user"]
    acc = await access(db, ws, user.id, is_admin=user.has("workspaces.admin"))
    if not acc.can("read"):
        raise NotFoundException()
    request.scope.setdefault("state", {})["workspace_access"] = acc
    return acc


def need(acc: Access, action: str) -> None:
    if not acc.can(action):
        raise PermissionDeniedException(NO_PERMISSION)


def space_context(acc: Access, **extra: Any) -> dict[str, Any]:
    return {
        "ws": acc.workspace,
        "acc": acc,
        "roles": ROLES,
        "role_labels": ROLE_LABELS,
        "verb_labels": VERB_LABELS,
        "base": f"{BASE}/{acc.workspace.slug}",
        "when": format_when,
        **extra,
    }


def _user(request: Request) -> Any:
    return request.scope["user"]


async def _db_user(db: AsyncSession, request: Request) -> User:
    user = await db.get(User, _user(request).id)
    if user is None:  # pragma: no cover - the session would have been refused
        raise NotFoundException()
    return user


def _display(user: Any) -> str:
    return getattr(user, "display_name", None) or user.name or user.username


class WorkspacesController(Controller):
    path = BASE
    guards = [intranet_required]

    # -- list and create ---------------------------------------------------------------------------
    @get("/", name="workspaces:index")
    async def index(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        user = _user(request)
        mine = await my_workspaces(db, user.id)
        discover = await open_workspaces(db, user.id)
        counts = await member_counts(db, [ws.id for ws, _ in mine] + [ws.id for ws, _ in discover])
        return await render(
            request,
            "workspaces/index.html",
            {
                "mine": mine,
                "discover": discover,
                "counts": counts,
                "role_labels": ROLE_LABELS,
                "when": format_when,
                "may_create": can_create(user, plugin_settings(request)),
            },
        )

    async def _new_page(
        self, request: Request, form: dict[str, str], errors: dict[str, str], status: int = 200
    ) -> Response:
        return await render(request, "workspaces/new.html", {"form": form, "errors": errors}, status_code=status)

    def _may_create(self, request: Request) -> None:
        if not can_create(_user(request), plugin_settings(request)):
            raise PermissionDeniedException(NO_PERMISSION)

    @get("/novo", name="workspaces:new")
    async def new(self, request: Request) -> Response:
        self._may_create(request)
        return await self._new_page(request, {"visibility": "private"}, {})

    @post("/novo", name="workspaces:create")
    async def create(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        self._may_create(request)
        raw = await request.form()
        form = {k: str(raw.get(k, "")) for k in ("name", "description", "visibility")}
        errors = await validate_new_workspace(db, form["name"], form["visibility"], form["description"])
        if errors:
            return await self._new_page(request, form, errors, 400)
        owner = await _db_user(db, request)
        try:
            ws = await create_workspace(
                db, name=form["name"], owner=owner, visibility=form["visibility"], description=form["description"],
                actor=owner.username,
            )  # fmt: skip
        except WorkspaceError:  # a concurrent creation took the name
            await db.rollback()
            return await self._new_page(request, form, {"name": N_("A workspace with this name already exists.")}, 400)
        await db.commit()
        return Redirect(f"{BASE}/{ws.slug}/", status_code=303)

    # -- home --------------------------------------------------------------------------------------
    async def _home(
        self,
        request: Request,
        db: AsyncSession,
        acc: Access,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        ws = acc.workspace
        people = await members(db, ws)
        pending = []
        if acc.can("manage"):
            pending = await join_requests(db, ws)
        asked = False
        if acc.role is None and ws.visibility == "open":
            asked = any(req.user_id == _user(request).id for req, _ in await join_requests(db, ws))
        return await render(
            request,
            "workspaces/home.html",
            space_context(
                acc,
                members=people,
                announcements=await announcements(db, ws),
                activity=await recent_activity(db, {ws.id}, limit=20),
                pages=await wiki_pages(db, ws),
                pending=pending,
                asked=asked,
                form=form or {},
                errors=errors or {},
            ),
            status_code=status,
        )

    @get("/{slug:str}", name="workspaces:home")
    async def home(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        acc = await load_space(request, db, slug)
        return await self._home(request, db, acc)

    # -- members -----------------------------------------------------------------------------------
    async def _members(
        self,
        request: Request,
        db: AsyncSession,
        acc: Access,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        ws = acc.workspace
        return await render(
            request,
            "workspaces/members.html",
            space_context(
                acc,
                members=await members(db, ws),
                pending=await join_requests(db, ws) if acc.can("manage") else [],
                form=form or {"role": "member"},
                errors=errors or {},
                me=_user(request).id,
            ),
            status_code=status,
            block="members",
        )

    @get("/{slug:str}/membros", name="workspaces:members")
    async def members_page(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        acc = await load_space(request, db, slug)
        return await self._members(request, db, acc)

    @post("/{slug:str}/membros", name="workspaces:add_member")
    async def add_member(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "manage")
        raw = await request.form()
        form = {"username": str(raw.get("username", "")).strip(), "role": str(raw.get("role", "member"))}
        errors: dict[str, str] = {}
        if form["role"] not in ROLES:
            errors["role"] = N_("Choose a role.")
        person = None
        try:
            person = await get_user(db, form["username"]) if form["username"] else None
        except UserError:
            person = None
        if person is None or not person.is_active:
            errors["username"] = NOT_A_USER
        elif (await access(db, acc.workspace, person.id)).role is not None:
            errors["username"] = ALREADY_MEMBER
        if errors:
            return await self._members(request, db, acc, form, errors, 200 if is_fragment_request(request) else 400)
        assert person is not None
        await set_member(db, acc.workspace, person, form["role"], actor=_user(request).username)
        await db.commit()
        return await self._after_members_change(request, db, acc)

    async def _after_members_change(self, request: Request, db: AsyncSession, acc: Access) -> Response:
        """The members page again (the table alone for htmx), seen with the actor's standing after the change."""
        user = _user(request)
        now = await access(db, acc.workspace, user.id, is_admin=user.has("workspaces.admin"))
        url = f"{BASE}/{acc.workspace.slug}/membros" if now.can("read") else f"{BASE}/"
        if is_fragment_request(request):
            if now.can("manage"):
                return await self._members(request, db, now)
            return Response("", status_code=200, headers={"HX-Redirect": url})
        return Redirect(url, status_code=303)

    async def _member(self, db: AsyncSession, acc: Access, user_id: int) -> User:
        person = await db.get(User, user_id)
        if person is None or (await access(db, acc.workspace, user_id)).role is None:
            raise NotFoundException()
        return person

    @post("/{slug:str}/membros/{user_id:int}/papel", name="workspaces:set_role")
    async def set_role(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], user_id: FromPath[int]
    ) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "manage")
        person = await self._member(db, acc, user_id)
        role = str((await request.form()).get("role", ""))
        if role not in ROLES:
            return await self._members(request, db, acc, errors={"members": N_("Choose a role.")}, status=400)
        try:
            await set_member(db, acc.workspace, person, role, actor=_user(request).username)
        except WorkspaceError:
            await db.rollback()
            acc = await load_space(request, db, slug)  # the rollback expired the loaded rows
            status = 200 if is_fragment_request(request) else 409
            return await self._members(request, db, acc, errors={"members": LAST_OWNER}, status=status)
        await db.commit()
        return await self._after_members_change(request, db, acc)

    @post("/{slug:str}/membros/{user_id:int}/remover", name="workspaces:remove_member")
    async def remove(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], user_id: FromPath[int]
    ) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "manage")
        person = await self._member(db, acc, user_id)
        try:
            await remove_member(db, acc.workspace, person, actor=_user(request).username)
        except WorkspaceError:
            await db.rollback()
            acc = await load_space(request, db, slug)  # the rollback expired the loaded rows
            status = 200 if is_fragment_request(request) else 409
            return await self._members(request, db, acc, errors={"members": LAST_OWNER}, status=status)
        await db.commit()
        return await self._after_members_change(request, db, acc)

    @post("/{slug:str}/sair", name="workspaces:leave")
    async def leave(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        acc = await load_space(request, db, slug)
        if acc.role is None:
            raise PermissionDeniedException(NO_PERMISSION)
        me = await _db_user(db, request)
        try:
            await remove_member(db, acc.workspace, me, actor=me.username)
        except WorkspaceError:
            await db.rollback()
            acc = await load_space(request, db, slug)  # the rollback expired the loaded rows
            return await self._home(request, db, acc, errors={"leave": LAST_OWNER}, status=409)
        await db.commit()
        return Redirect(f"{BASE}/?left={acc.workspace.slug}", status_code=303)

    @post("/{slug:str}/pedir", name="workspaces:request_join")
    async def request_join(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        acc = await load_space(request, db, slug)
        if acc.role is not None or acc.workspace.visibility != "open":
            raise PermissionDeniedException(NO_PERMISSION)
        message = str((await request.form()).get("message", ""))
        if len(message) > 500:
            return await self._home(
                request, db, acc, {"message": message}, {"message": N_("At most 500 characters.")}, 400
            )
        await request_to_join(db, acc.workspace, await _db_user(db, request), message)
        await db.commit()
        return Redirect(f"{BASE}/{acc.workspace.slug}/?asked=1", status_code=303)

    @post("/{slug:str}/pedidos/{request_id:int}", name="workspaces:answer_request")
    async def answer(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], request_id: FromPath[int]
    ) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "manage")
        decision = str((await request.form()).get("decision", ""))
        if decision not in ("accept", "decline"):
            return await self._members(request, db, acc, errors={"requests": N_("Choose accept or decline.")},
                                       status=400)  # fmt: skip
        try:
            await answer_request(db, acc.workspace, request_id, decision == "accept", actor=_user(request).username)
        except WorkspaceError:
            await db.rollback()
            acc = await load_space(request, db, slug)  # the rollback expired the loaded rows
            return await self._members(request, db, acc, errors={"requests": REQUEST_GONE}, status=404)
        await db.commit()
        return await self._after_members_change(request, db, acc)

    # -- announcements and comments ------------------------------------------------------------------
    @post("/{slug:str}/avisos", name="workspaces:post_announcement")
    async def announce(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "write")
        raw = await request.form()
        form = {"title": str(raw.get("title", "")), "body": str(raw.get("body", ""))}
        errors = check_announcement(form["title"], form["body"])
        if errors:
            return await self._home(request, db, acc, form, errors, 400)
        user = _user(request)
        ann = await post_announcement(db, acc.workspace, user, form["title"], form["body"])
        url = f"{BASE}/{acc.workspace.slug}/avisos/{ann.id}"
        mentioned = [u.id for u in await mentioned_users(db, acc.workspace, f"{ann.title}\n{ann.body}", user.id)]
        await db.commit()
        await self._notify_mentions(request, acc.workspace, mentioned, ann.title, url)
        return Redirect(url, status_code=303)

    async def _notify_mentions(self, request: Request, ws: Workspace, user_ids: list[int], title: str,
                               url: str) -> None:  # fmt: skip
        if not user_ids:
            return
        user = _user(request)
        await request.app.state.suite.events.emit(
            "workspaces.mention", user_ids=user_ids, actor_id=user.id, actor=_display(user),
            workspace_id=ws.id, workspace=ws.name, title=title, url=url,
        )  # fmt: skip

    async def _announcement_page(
        self,
        request: Request,
        db: AsyncSession,
        acc: Access,
        ann_id: int,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        ann = await get_announcement(db, acc.workspace, ann_id)
        if ann is None:
            raise NotFoundException()
        author = await db.get(User, ann.author_id) if ann.author_id else None
        return await render(
            request,
            "workspaces/announcement.html",
            space_context(
                acc,
                ann=ann,
                ann_html=render_markdown(ann.body),
                author=(author.name or author.username) if author else "",
                comments=await comments(db, ann),
                form=form or {},
                errors=errors or {},
            ),
            status_code=status,
            block="comments",
        )

    @get("/{slug:str}/avisos/{ann_id:int}", name="workspaces:announcement")
    async def announcement(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], ann_id: FromPath[int]
    ) -> Response:
        acc = await load_space(request, db, slug)
        return await self._announcement_page(request, db, acc, ann_id)

    @post("/{slug:str}/avisos/{ann_id:int}/comentarios", name="workspaces:comment")
    async def comment(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], ann_id: FromPath[int]
    ) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "comment")
        ann = await get_announcement(db, acc.workspace, ann_id)
        if ann is None:
            raise NotFoundException()
        form = {"body": str((await request.form()).get("body", ""))}
        errors = check_comment(form["body"])
        if errors:
            status = 200 if is_fragment_request(request) else 400
            return await self._announcement_page(request, db, acc, ann_id, form, errors, status)
        user = _user(request)
        followers = await thread_participants(db, acc.workspace, ann)
        item = await add_comment(db, acc.workspace, ann, user, form["body"])
        mentioned = [u.id for u in await mentioned_users(db, acc.workspace, form["body"], user.id)]
        url = f"{BASE}/{acc.workspace.slug}/avisos/{ann.id}#comment-{item.id}"
        title = ann.title
        await db.commit()
        await self._notify_mentions(request, acc.workspace, mentioned, title, url)
        replies = [uid for uid in followers if uid != user.id and uid not in mentioned]
        if replies:
            await request.app.state.suite.events.emit(
                "workspaces.comment", user_ids=replies, actor_id=user.id, actor=_display(user),
                workspace_id=acc.workspace.id, workspace=acc.workspace.name, title=title, url=url,
            )  # fmt: skip
        if is_fragment_request(request):
            return await self._announcement_page(request, db, acc, ann_id)
        return Redirect(url, status_code=303)

    # -- wiki pages -------------------------------------------------------------------------------
    @get("/{slug:str}/paginas", name="workspaces:pages")
    async def pages(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        acc = await load_space(request, db, slug)
        return await render(
            request, "workspaces/pages.html", space_context(acc, pages=await wiki_pages(db, acc.workspace))
        )

    async def _page(self, db: AsyncSession, acc: Access, page: str) -> Any:
        item = await get_page(db, acc.workspace, page)
        if item is None:
            raise NotFoundException()
        return item

    async def _page_form(
        self,
        request: Request,
        acc: Access,
        form: dict[str, str],
        errors: dict[str, str],
        item: Any = None,
        status: int = 200,
        preview: str | None = None,
    ) -> Response:
        from markupsafe import Markup

        return await render(
            request,
            "workspaces/page_form.html",
            space_context(
                acc,
                form=form,
                errors=errors,
                item=item,
                page_slug=(item.data or {}).get("page") if item is not None else "",
                preview=Markup(preview) if preview is not None else None,  # noqa: S704 - sanitised Markdown
            ),
            status_code=status,
        )

    @get("/{slug:str}/nova-pagina", name="workspaces:new_page")
    async def new_page(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "write")
        return await self._page_form(request, acc, {}, {})

    @post("/{slug:str}/nova-pagina", name="workspaces:create_page")
    async def create_page(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "write")
        raw = await request.form()
        form = {k: str(raw.get(k, "")) for k in ("title", "slug", "body")}
        if "preview" in raw:
            return await self._page_form(request, acc, form, {}, preview=render_markdown(form["body"]))
        try:
            item = await save_page(db, acc.workspace, _user(request), title=form["title"], body=form["body"],
                                   page_slug=form["slug"])  # fmt: skip
        except ContentError as exc:
            await db.rollback()
            acc = await load_space(request, db, slug)  # the rollback expired the loaded rows
            return await self._page_form(request, acc, form, exc.errors, status=400)
        await db.commit()
        await request.app.state.suite.events.emit("content.saved", item_id=item.id, type=item.type)
        return Redirect(PAGE.path_for(item), status_code=303)

    @get("/{slug:str}/paginas/{page:str}", name="workspaces:page")
    async def page(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], page: FromPath[str]
    ) -> Response:
        acc = await load_space(request, db, slug)
        item = await self._page(db, acc, page)
        editor_id = revisions_author(await revisions(db, item.id))
        editor = await db.get(User, editor_id) if editor_id else None
        return await render(
            request,
            "workspaces/page.html",
            space_context(
                acc, item=item, page_slug=page, last_editor=(editor.name or editor.username) if editor else ""
            ),
        )

    @get("/{slug:str}/paginas/{page:str}/editar", name="workspaces:edit_page")
    async def edit_page(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], page: FromPath[str]
    ) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "write")
        item = await self._page(db, acc, page)
        return await self._page_form(request, acc, {"title": item.title, "body": item.body}, {}, item)

    @post("/{slug:str}/paginas/{page:str}/editar", name="workspaces:update_page")
    async def update_page(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], page: FromPath[str]
    ) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "write")
        item = await self._page(db, acc, page)
        raw = await request.form()
        form = {k: str(raw.get(k, "")) for k in ("title", "body")}
        if "preview" in raw:
            return await self._page_form(request, acc, form, {}, item, preview=render_markdown(form["body"]))
        try:
            await save_page(db, acc.workspace, _user(request), title=form["title"], body=form["body"], item=item)
        except ContentError as exc:
            await db.rollback()
            acc = await load_space(request, db, slug)  # the rollback expired the loaded rows
            item = await self._page(db, acc, page)
            return await self._page_form(request, acc, form, exc.errors, item, status=400)
        await db.commit()
        await request.app.state.suite.events.emit("content.saved", item_id=item.id, type=item.type)
        return Redirect(f"{PAGE.path_for(item)}?saved=1", status_code=303)

    @get("/{slug:str}/paginas/{page:str}/historico", name="workspaces:page_history")
    async def page_history(
        self,
        request: Request,
        db: NamedDependency[AsyncSession],
        slug: FromPath[str],
        page: FromPath[str],
        a: FromQuery[int | None] = None,
        b: FromQuery[int | None] = None,
    ) -> Response:
        acc = await load_space(request, db, slug)
        item = await self._page(db, acc, page)
        revs = await revisions(db, item.id)
        by_number = {r.number: r for r in revs}
        diff = None
        if a and b and a in by_number and b in by_number:
            diff = diff_revisions(by_number[a].snapshot, by_number[b].snapshot)
            diff = [(name, ops) for name, ops in diff if name in ("title", "body")]
        authors = {
            u.id: (u.name or u.username)
            for u in [await db.get(User, uid) for uid in {r.author_id for r in revs if r.author_id}]
            if u is not None
        }
        return await render(
            request,
            "workspaces/page_history.html",
            space_context(
                acc,
                item=item,
                page_slug=page,
                revisions=revs,
                authors=authors,
                diff=diff,
                a=a,
                b=b,
                field_labels={"title": N_("Title"), "body": N_("Text (Markdown)")},
            ),
        )

    @post("/{slug:str}/paginas/{page:str}/restaurar/{number:int}", name="workspaces:restore_page")
    async def restore_page(
        self,
        request: Request,
        db: NamedDependency[AsyncSession],
        slug: FromPath[str],
        page: FromPath[str],
        number: FromPath[int],
    ) -> Response:
        acc = await load_space(request, db, slug)
        need(acc, "write")
        item = await self._page(db, acc, page)
        user = _user(request)
        try:
            await restore(db, PAGE, item, number, actor_id=user.id, actor=user.username)
        except ContentError:
            await db.rollback()
            raise NotFoundException() from None
        await log_activity(db, acc.workspace.id, user.id, "edited a page", item.title, PAGE.path_for(item))
        await db.commit()
        await request.app.state.suite.events.emit("content.saved", item_id=item.id, type=item.type)
        return Redirect(f"{PAGE.path_for(item)}?restored={number}", status_code=303)


def revisions_author(revs: list[Any]) -> int | None:
    """Author of the newest revision (who last edited a page)."""
    return revs[0].author_id if revs and revs[0].author_id else None
