"""Alert banner: civil protection and weather warnings shown on top of every portal page."""

from .plugin import AlertsPlugin

plugin = AlertsPlugin()
