"""``suite intranet``: the e-mail digest of notifications."""

from __future__ import annotations

from typing import Annotated

import typer
from concelho.cli.common import emit, load_suite, run_db

app = typer.Typer(help="Intranet home: notifications and their e-mail digest.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command()
def digest(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show who would get a digest, queue nothing")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Queue one e-mail per user with unread notifications not mailed yet (sent when SMTP is configured)."""
    from .services import queue_digests

    suite = load_suite()
    settings = suite.settings
    digests = run_db(lambda session: queue_digests(session, settings.base_url, settings.site_name, dry_run=dry_run))
    rows = [{"username": d.username, "email": d.email, "notifications": d.count, "subject": d.subject}
            for d in digests]  # fmt: skip
    smtp = bool(settings.smtp_url)
    if json_output:
        emit({"queued": 0 if dry_run else len(rows), "dry_run": dry_run, "smtp": smtp, "digests": rows}, True)
        return
    if not rows:
        emit(None, False, "no unread notifications to mail")
        return
    emit(rows, False, columns=["username", "email", "notifications"], title="Digests")
    if dry_run:
        emit(None, False, f"dry run: {len(rows)} digest(s) would be queued")
    elif smtp:
        emit(None, False, f"queued {len(rows)} digest(s); they are sent by the background jobs or `suite mail send`")
    else:
        emit(None, False, f"queued {len(rows)} digest(s); no SMTP configured: read them with `suite mail list`")
