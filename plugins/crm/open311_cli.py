"""``suite crm apikeys``: create, list and revoke the keys of Open311 clients."""

from __future__ import annotations

import typer

apikeys_app = typer.Typer(help="Open311 API keys (create shows the key once, list, revoke).", no_args_is_help=True)
