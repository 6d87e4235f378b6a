"""Events: the public agenda (list with date/category filters, month calendar, iCalendar feeds); home block."""

from .plugin import EventsPlugin

plugin = EventsPlugin()
