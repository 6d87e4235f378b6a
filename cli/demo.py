"""``suite demo load``: a fictional municipality (Vila Serena) for trying the suite."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import emit, load_suite, run_db

app = typer.Typer(help="Demo content.", no_args_is_help=True)

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - documented demo login


@app.command()
def load(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Load the demo municipality: departments, staff and each plugin's demo content.

    Demo staff sign in with the password ``demo-password-2026``.
    """
    from concelho.suite.auth.passwords import hash_password
    from concelho.suite.content.importer import import_content
    from concelho.suite.imports import import_departments, import_users
    from concelho.suite.models import User
    from concelho.suite.paths import SUITE_DIR
    from sqlalchemy import update

    suite = load_suite()
    demo_dir = SUITE_DIR / "demo"

    async def op(session):  # type: ignore[no-untyped-def]
        counts: dict[str, int] = {}
        deps = await import_departments(session, demo_dir / "departments.csv")
        counts["departments"] = deps.created
        users = await import_users(session, demo_dir / "users.csv")
        counts["users"] = users.created
        if users.created:
            await session.execute(
                update(User).where(User.password_hash == "").values(password_hash=hash_password(DEMO_PASSWORD))
            )
            await session.commit()
        types = suite.registry.content_types()
        for plugin in suite.registry:
            demo_path = plugin.path / "demo"
            if demo_path.is_dir():
                files = sorted([*demo_path.glob("*.jsonl"), *demo_path.glob("*.csv")])
                for path in files:
                    summary = await import_content(session, path, types, actor="demo")
                    if summary.created:
                        counts[plugin.name] = counts.get(plugin.name, 0) + summary.created
            created = await plugin.load_demo(session)
            if created:
                counts[plugin.name] = counts.get(plugin.name, 0) + created
        await session.commit()
        return {k: v for k, v in counts.items() if v}

    counts = run_db(op)
    emit(
        counts,
        json_output,
        "demo loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()) if counts else "demo already loaded",
    )
