"""``suite crm apikeys``: create, list and revoke the keys of Open311 clients."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from concelho.cli.common import emit, fail, run_db

apikeys_app = typer.Typer(help="Open311 API keys (create shows the key once, list, revoke).", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _run(op: Any) -> Any:
    from .apikeys import ApiKeyError

    try:
        return run_db(op)
    except ApiKeyError as exc:
        fail(str(exc))


@apikeys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who uses the key (the client application)")],
    json_output: JsonOpt = False,
) -> None:
    """Create a key for an Open311 client. The key is shown only now: give it to the client."""
    from .apikeys import create_key, describe

    async def go(session):  # type: ignore[no-untyped-def]
        key, plain = await create_key(session, name)
        await session.commit()
        return {**describe(key), "key": plain}

    created = _run(go)
    emit(
        created,
        json_output,
        f"API key {created['id']} ({created['name']}) created:\n{created['key']}\n"
        "Store it now: it is not shown again (only its hash is kept).",
    )


@apikeys_app.command("list")
def list_(
    active: Annotated[bool, typer.Option("--active", help="Only keys not revoked")] = False,
    json_output: JsonOpt = False,
) -> None:
    """List the keys (id, name, prefix, dates); the keys themselves are never shown again."""
    from .apikeys import describe, list_keys

    async def go(session):  # type: ignore[no-untyped-def]
        return [describe(k) for k in await list_keys(session, include_revoked=not active)]

    rows = _run(go)
    if json_output:
        emit(rows, True)
    elif not rows:
        emit(None, False, "No API keys yet: create one with `suite crm apikeys create --name NAME`.")
    else:
        table = [
            {
                "id": r["id"],
                "name": r["name"],
                "prefix": r["prefix"],
                "created": r["created_at"][:10],
                "last used": (r["last_used_at"] or "")[:10],
                "state": f"revoked {r['revoked_at'][:10]}" if r["revoked_at"] else "active",
            }
            for r in rows
        ]
        emit(table, False, columns=["id", "name", "prefix", "created", "last used", "state"], title="API keys")


@apikeys_app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="The key's id or prefix (as `list` shows it)")],
    json_output: JsonOpt = False,
) -> None:
    """Revoke a key: its client gets 403 from then on."""
    from .apikeys import describe, revoke_key

    async def go(session):  # type: ignore[no-untyped-def]
        row = await revoke_key(session, key)
        await session.commit()
        return describe(row)

    revoked = _run(go)
    emit(revoked, json_output, f"API key {revoked['id']} ({revoked['name']}) revoked.")
