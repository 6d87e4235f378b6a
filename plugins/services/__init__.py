"""Services: the catalogue of the council's services (certificates, licences, requests), with online requests."""

from .plugin import ServicesPlugin

plugin = ServicesPlugin()
