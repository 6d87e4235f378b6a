"""Full-text search: backends (embedded tantivy, Meilisearch), indexing and reindex.

Plugins never talk to an engine: they provide documents through the plugin registry.
"""
