"""``suite alerts``: raise, clear and list alert banners from scripts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from concelho.cli.common import emit, fail, run_db

app = typer.Typer(help="Alert banner on the public portal (civil protection, weather warnings).", no_args_is_help=True)


@app.command("raise")
def raise_(
    message: Annotated[str, typer.Argument(help="Text of the banner (Portuguese)")],
    level: Annotated[str, typer.Option(help="info, warning or danger")] = "warning",
    message_en: Annotated[str, typer.Option("--en", help="English text")] = "",
    link: Annotated[str, typer.Option(help="Local path or https:// link for details")] = "",
    until: Annotated[str, typer.Option(help="End, ISO date-time (e.g. 2026-12-01T18:00+00:00)")] = "",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Raise a new alert banner."""
    from .services import AlertError, AlertInput, raise_alert

    ends_at = None
    if until:
        try:
            ends_at = datetime.fromisoformat(until)
        except ValueError:
            fail(f"--until: not an ISO date-time: {until!r}")

    async def go(session):  # type: ignore[no-untyped-def]
        alert = await raise_alert(session, AlertInput(message, level, message_en, link, ends_at), "cli")
        await session.commit()
        return alert

    try:
        alert = run_db(go)
    except AlertError as exc:
        fail(str(exc))
    emit(
        {"id": alert.id, "level": alert.level, "message": alert.message},
        json_output,
        f"raised alert {alert.id}",
    )


@app.command("clear")
def clear(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `suite alerts list`)")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Clear (take down) an alert."""
    from .services import AlertError, clear_alert

    async def go(session):  # type: ignore[no-untyped-def]
        alert = await clear_alert(session, alert_id, "cli")
        await session.commit()
        return alert

    try:
        alert = run_db(go)
    except AlertError as exc:
        fail(str(exc))
    emit({"id": alert.id, "cleared": True}, json_output, f"cleared alert {alert.id}")


@app.command("list")
def list_(json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List recent alerts."""
    from .services import all_alerts

    async def go(session):  # type: ignore[no-untyped-def]
        return await all_alerts(session)

    rows = [
        {
            "id": a.id,
            "level": a.level,
            "message": a.message,
            "active": a.cleared_at is None,
            "created_at": a.created_at.isoformat(),
        }
        for a in run_db(go)
    ]
    emit(rows, json_output, columns=["id", "level", "active", "message", "created_at"], title="Alerts")
