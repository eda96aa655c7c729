"""The HTTP bytes edge: signed-URL streaming with RFC 9110 ranges and conditionals."""

from streaming.routes import stream_route_handlers

__all__ = ["stream_route_handlers"]
