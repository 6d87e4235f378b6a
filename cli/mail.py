"""``suite mail``: the outgoing e-mail outbox."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import emit, load_suite, run_db

app = typer.Typer(help="Outgoing e-mail (kept in an outbox; sent when SMTP is configured).", no_args_is_help=True)


@app.command("list")
def list_(
    pending: Annotated[bool, typer.Option("--pending", help="Only messages not sent yet")] = False,
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 50,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Messages in the outbox."""
    from concelho.suite.mail import MailMessage
    from sqlalchemy import select

    async def op(session):  # type: ignore[no-untyped-def]
        query = select(MailMessage).order_by(MailMessage.id.desc()).limit(limit)
        if pending:
            query = query.where(MailMessage.sent_at.is_(None))
        return [
            {"id": m.id, "to": m.to, "subject": m.subject, "created_at": m.created_at.isoformat(),
             "sent_at": m.sent_at.isoformat() if m.sent_at else None, "body": m.body}
            for m in (await session.execute(query)).scalars()
        ]  # fmt: skip

    rows = run_db(op)
    emit(rows, json_output, columns=["id", "to", "subject", "created_at", "sent_at"], title="Mail outbox")


@app.command("send")
def send(json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Send pending messages now (needs SUITE_SMTP_URL)."""
    from concelho.suite.mail import send_pending

    suite = load_suite()
    sent = run_db(lambda session: send_pending(session, suite.settings))
    emit({"sent": sent}, json_output, f"sent {sent} message(s)" if suite.settings.smtp_url else "no SMTP configured")
