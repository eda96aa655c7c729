"""The media core: use cases, records and ports. Knows nothing of HTTP or GraphQL."""
