"""Fale Connosco and citizen CRM: contact form, online service requests, case tracking, staff case desk."""

from .plugin import CrmPlugin

plugin = CrmPlugin()
