"""The plugin contract and registry.

A plugin is one object (an instance of :class:`Plugin`) published under the entry-point
group ``suite.plugins``.  Its ``name`` is its namespace everywhere: templates ``name/…``,
static ``/static/name/…``, tables ``name_*``, route names ``name:…``, CLI ``suite name``,
Alembic branch ``name`` and permissions ``name.*``.  Built-in features use the same group.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import typer
    from litestar.types import ControllerRouterHandler

    from .settings import Settings

ENTRY_POINT_GROUP = "suite.plugins"

EventListener = Callable[..., Awaitable[None] | None]
HookRenderer = Callable[[Any], str | Awaitable[str]]


class PluginError(RuntimeError):
    """A plugin cannot be loaded (unknown, missing requirement, cycle, broken contract)."""


@dataclass(frozen=True)
class NavItem:
    """A navigation entry a plugin contributes to the portal or intranet menus."""

    label: str
    url: str
    area: str = "portal"  # portal | intranet | admin
    permission: str | None = None
    order: int = 100


class Plugin:
    """Base class of every feature.  Subclasses set class attributes and override hooks.

    Nothing heavy happens at construction or import: models are imported by
    :meth:`load_models`, routes built by :meth:`route_handlers`, the CLI by :meth:`cli`.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    version: ClassVar[str] = "0.1.0"
    requires: ClassVar[tuple[str, ...]] = ()
    #: ``{"alerts.manage": "Raise and clear alert banners"}``
    permissions: ClassVar[dict[str, str]] = {}
    #: Module (relative to the plugin package) holding its SQLModel tables.
    models_module: ClassVar[str | None] = "models"

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<plugin {self.name} {self.version}>"

    # -- locations found by convention ---------------------------------------------------------
    @property
    def package(self) -> str:
        module = importlib.import_module(type(self).__module__)
        if hasattr(module, "__path__"):  # the class lives in the package's own __init__.py
            return module.__name__
        return module.__name__.rsplit(".", 1)[0]

    @property
    def path(self) -> Path:
        module = importlib.import_module(type(self).__module__)
        return Path(inspect.getfile(module)).parent

    @property
    def templates_dir(self) -> Path | None:
        path = self.path / "templates"
        return path if path.is_dir() else None

    @property
    def static_dir(self) -> Path | None:
        path = self.path / "static" / self.name
        return path if path.is_dir() else None

    @property
    def migrations_dir(self) -> Path | None:
        path = self.path / "migrations"
        return path if path.is_dir() else None

    # -- hooks ----------------------------------------------------------------------------------
    def configure(self, settings: Settings) -> None:
        """Receive the ``[plugins.<name>]`` settings table.  No I/O here."""
        self.settings = self.settings_for(settings)

    def settings_for(self, settings: Settings) -> dict[str, Any]:
        """The plugin's effective settings in an app with ``settings``: its defaults under the
        ``[plugins.<name>]`` table (plugin objects are shared by every app of the process, so
        request handlers read ``state.plugin_settings(name)``, worked out once per app).  A plugin
        that validates its settings overrides this."""
        return {**self.default_settings(), **settings.for_plugin(self.name)}

    def default_settings(self) -> dict[str, Any]:
        return {}

    def load_models(self) -> None:
        """Import the plugin's tables so they join the shared metadata."""
        if self.models_module:
            importlib.import_module(f"{self.package}.{self.models_module}")

    def route_handlers(self) -> list[ControllerRouterHandler]:
        """Controllers and handlers; core mounts them on one Router per plugin."""
        return []

    def cli(self) -> typer.Typer | None:
        """A Typer app mounted as ``suite <name>``."""
        return None

    def nav_items(self) -> list[NavItem]:
        return []

    def template_hooks(self) -> dict[str, HookRenderer]:
        """Page slots (``portal_top``, ``intranet_home`` …) → callable(request) returning HTML."""
        return {}

    def listeners(self) -> dict[str, list[EventListener]]:
        """Event name → listeners (``{"content.saved": [self.on_saved]}``)."""
        return {}

    def content_types(self) -> list[Any]:
        """Content types this plugin owns (:class:`concelho.suite.content.types.ContentType`)."""
        return []

    def visibility_hooks(self) -> dict[str, Any]:
        """Answers about what a user may see: ``{"workspace_ids": async (session, user_id) -> set[int]}``."""
        return {}

    def search_providers(self) -> list[Any]:
        """Search document providers (used by ``search/``)."""
        return []

    def on_startup(self, app: Any) -> Awaitable[None] | None:
        return None

    def background_jobs(self) -> list[Any]:
        """Coroutines ``job(state)`` the server (or ``suite worker``) runs about once a minute."""
        return []

    async def load_demo(self, session: Any) -> int:
        """Add demo content for ``suite demo load`` (idempotent); returns how many items were created."""
        return 0


@dataclass
class PluginInfo:
    """What ``suite plugins list`` shows."""

    name: str
    version: str
    state: str
    requires: tuple[str, ...]
    source: str
    routes: list[str] = field(default_factory=list)


def discover() -> dict[str, Plugin]:
    """All plugins published under the ``suite.plugins`` entry-point group."""
    found: dict[str, Plugin] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {ep.name!r} failed to import: {exc}") from exc
        plugin = obj() if isinstance(obj, type) else obj
        if not isinstance(plugin, Plugin):
            raise PluginError(f"entry point {ep.name!r} is not a Plugin instance")
        if plugin.name != ep.name:
            raise PluginError(f"entry point {ep.name!r} points at plugin named {plugin.name!r}")
        found[plugin.name] = plugin
    return found


def order_plugins(selected: Iterable[str], available: dict[str, Plugin]) -> list[Plugin]:
    """Order ``selected`` so requirements come first; fail clearly on missing or circular ones."""
    ordered: list[Plugin] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join((*chain[chain.index(name) :], name))
            raise PluginError(f"circular plugin requirement: {cycle}")
        if name not in available:
            if chain:
                raise PluginError(f"plugin {chain[-1]!r} requires {name!r}, which is not installed or is excluded")
            raise PluginError(f"unknown plugin {name!r} (installed: {', '.join(sorted(available)) or 'none'})")
        state[name] = "visiting"
        for req in available[name].requires:
            visit(req, (*chain, name))
        state[name] = "done"
        ordered.append(available[name])

    for name in selected:
        visit(name, ())
    return ordered


class PluginRegistry:
    """The enabled plugins of one app, in dependency order."""

    def __init__(self, plugins: list[Plugin], available: dict[str, Plugin] | None = None) -> None:
        self.plugins = plugins
        self.available = available or {p.name: p for p in plugins}
        self.by_name = {p.name: p for p in plugins}
        self._nav: dict[str, tuple[NavItem, ...]] = {}
        self._hooks: dict[str, list[HookRenderer]] | None = None
        self._types: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, available: dict[str, Plugin] | None = None) -> PluginRegistry:
        available = dict(discover() if available is None else available)
        for name in settings.plugins_exclude:
            if name not in available:
                raise PluginError(f"SUITE_PLUGINS_EXCLUDE names unknown plugin {name!r}")
        pool = {n: p for n, p in available.items() if n not in settings.plugins_exclude}
        selected = list(settings.plugins) if settings.plugins else sorted(pool)
        for name in selected:
            if name in settings.plugins_exclude:
                raise PluginError(f"plugin {name!r} is both enabled and excluded")
        plugins = order_plugins(selected, pool)
        for plugin in plugins:
            plugin.configure(settings)
        return cls(plugins, available)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.plugins)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def get(self, name: str) -> Plugin | None:
        return self.by_name.get(name)

    def load_models(self) -> None:
        from concelho.search import models as search_models  # noqa: F401
        from sqlalchemy.orm import configure_mappers

        from . import (
            mail,  # noqa: F401
            models,  # noqa: F401
        )
        from .content import models as content_models  # noqa: F401

        for plugin in self.plugins:
            plugin.load_models()
        configure_mappers()

    def permissions(self) -> dict[str, str]:
        from .auth.permissions import CORE_PERMISSIONS

        perms = dict(CORE_PERMISSIONS)
        for plugin in self.plugins:
            for perm, label in plugin.permissions.items():
                if not perm.startswith(plugin.name + "."):
                    raise PluginError(f"plugin {plugin.name!r} declares permission {perm!r} outside its namespace")
                perms[perm] = label
        return perms

    def content_types(self) -> dict[str, Any]:
        """Every registered content type by name (``news.article``), namespaced by plugin (collected once)."""
        if self._types is None:
            types: dict[str, Any] = {}
            for plugin in self.plugins:
                for ctype in plugin.content_types():
                    if not ctype.name.startswith(plugin.name + "."):
                        raise PluginError(
                            f"plugin {plugin.name!r} registers content type {ctype.name!r} outside its namespace"
                        )
                    types[ctype.name] = ctype
            self._types = types
        return dict(self._types)

    async def workspace_ids_for(self, session: Any, user_id: int) -> set[int]:
        """Workspaces whose private content ``user_id`` may see now, from every plugin that knows."""
        ids: set[int] = set()
        for plugin in self.plugins:
            hook = plugin.visibility_hooks().get("workspace_ids")
            if hook is not None:
                ids |= set(await hook(session, user_id))
        return ids

    def nav_items(self, area: str) -> list[NavItem]:
        """The menu entries of ``area`` in order (collected once: a registry's plugins never change)."""
        items = self._nav.get(area)
        if items is None:
            found = [item for p in self.plugins for item in p.nav_items() if item.area == area]
            items = self._nav[area] = tuple(sorted(found, key=lambda i: (i.order, i.label)))
        return list(items)

    def hooks(self) -> dict[str, list[HookRenderer]]:
        """Page slot → renderers, collected once (so each renderer keeps one identity for slot caching)."""
        if self._hooks is None:
            slots: dict[str, list[HookRenderer]] = {}
            for plugin in self.plugins:
                for slot, renderer in plugin.template_hooks().items():
                    slots.setdefault(slot, []).append(renderer)
            self._hooks = slots
        return self._hooks

    def listeners(self) -> dict[str, list[EventListener]]:
        out: dict[str, list[EventListener]] = {}
        for plugin in self.plugins:
            for event_name, funcs in plugin.listeners().items():
                out.setdefault(event_name, []).extend(funcs)
        return out

    def describe(self, routes_by_plugin: dict[str, list[str]] | None = None) -> list[PluginInfo]:
        rows = []
        for name, plugin in sorted(self.available.items()):
            state = "enabled" if name in self.by_name else "disabled"
            rows.append(
                PluginInfo(
                    name=name,
                    version=plugin.version,
                    state=state,
                    requires=plugin.requires,
                    source=plugin.package,
                    routes=(routes_by_plugin or {}).get(name, []),
                )
            )
        return rows
