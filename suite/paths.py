"""Where the installed core data lives (works from a source tree and from a wheel)."""

from pathlib import Path

#: ``<root>/suite`` in a source tree, ``site-packages/concelho/suite`` when installed.
SUITE_DIR = Path(__file__).resolve().parent
ROOT_DIR = SUITE_DIR.parent
TEMPLATES_DIR = ROOT_DIR / "templates"
STATIC_DIR = ROOT_DIR / "static"
LOCALE_DIR = SUITE_DIR / "locale"
MIGRATIONS_DIR = SUITE_DIR / "migrations"
