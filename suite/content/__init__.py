"""The content store: typed items (registered by plugins), revisions, workflow, media."""
