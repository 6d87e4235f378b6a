"""Alembic environment: one version table, one labelled branch per plugin (``core`` for the core)."""

from alembic import context
from concelho.suite.db import install_sqlite_pragmas, metadata
from sqlalchemy import create_engine

config = context.config
branch = config.attributes.get("branch")  # autogenerate only this namespace's tables


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = name if type_ == "table" else getattr(table, "name", "")
    if table_name == "alembic_version":
        return False
    if branch:
        return table_name.startswith(branch + "_")
    return True


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    install_sqlite_pragmas(engine)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations recreate tables; SQLite checks foreign keys again below, once, at the end.
        # (pysqlite has not opened a transaction yet, so the pragma takes effect.)
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")
    if connection.in_transaction():
        connection.commit()
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


run_migrations()
