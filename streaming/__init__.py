"""The HTTP bytes edge: signed-URL streaming with RFC 9110 ranges and conditionals."""

from streaming.routes import StreamSource, stream_route_handlers

__all__ = ["StreamSource", "stream_route_handlers"]
