"""The one Jinja environment: site overrides → core templates → plugin templates, plus prefixes.

``{% extends "core:base_portal.html" %}`` (or ``"<plugin>:…"``) always reaches the original,
so a site override can extend the template it replaces.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape

from .paths import TEMPLATES_DIR
from .plugins import Plugin


def build_environment(
    plugins: list[Plugin], site_dir: Path | None = None, debug: bool = False, *, enable_async: bool = True
) -> Environment:
    """Async environment for pages; a sync twin (``enable_async=False``) renders error pages."""
    plugin_dirs = {p.name: p.templates_dir for p in plugins if p.templates_dir}
    chain = []
    if site_dir and Path(site_dir).is_dir():
        chain.append(FileSystemLoader(str(site_dir)))
    chain.append(FileSystemLoader(str(TEMPLATES_DIR)))
    chain.extend(FileSystemLoader(str(path)) for path in plugin_dirs.values())
    # "core:x.html" / "<plugin>:x.html" always reach the shipped original of "<ns>/x.html".
    originals = {"core": FileSystemLoader(str(TEMPLATES_DIR / "core"))}
    originals.update({name: FileSystemLoader(str(path / name)) for name, path in plugin_dirs.items()})
    chain.append(PrefixLoader(originals, delimiter=":"))
    env = Environment(
        loader=ChoiceLoader(chain),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        auto_reload=debug,
        trim_blocks=True,
        lstrip_blocks=True,
        enable_async=enable_async,
    )
    env.policies["ext.i18n.trimmed"] = True
    return env
