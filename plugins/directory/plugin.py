"""The directory plugin object."""

from __future__ import annotations

from typing import Any

from concelho.suite.i18n import N_
from concelho.suite.plugins import NavItem, Plugin


class DirectoryPlugin(Plugin):
    name = "directory"
    label = "Staff directory"
    version = "0.1.0"

    def route_handlers(self) -> list[Any]:
        from .controllers import DirectoryController

        return [DirectoryController]

    def nav_items(self) -> list[NavItem]:
        return [NavItem(N_("People"), "/intranet/pessoas", area="intranet", order=15)]

    def template_hooks(self) -> dict[str, Any]:
        from .controllers import org_chart_people, stylesheet

        return {"org_chart_people": org_chart_people, "head": stylesheet}

    async def load_demo(self, session: Any) -> int:
        """Heads of department (job title "Chefe …", "Diretor(a) …") on the public org chart; idempotent."""
        from .services import demo_profiles

        return await demo_profiles(session)
