"""The ``suite`` command line (Typer): core commands plus one sub-app per plugin."""
