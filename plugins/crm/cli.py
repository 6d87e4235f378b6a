"""``suite crm``: Open311 API keys, exports, KPI report, legacy import, GDPR requests and retention."""

from __future__ import annotations

import typer

from .open311_cli import apikeys_app

app = typer.Typer(help="Citizen CRM (API keys, exports, reports, imports, GDPR).", no_args_is_help=True)
app.add_typer(apikeys_app, name="apikeys")
