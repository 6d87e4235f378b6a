"""Built-in feature plugins (each sub-package is one plugin, published under ``suite.plugins``)."""
