"""HTML edge (Litestar + Jinja2): the server-rendered page of a share link."""

from pages.share import TEMPLATE_DIRECTORY, share_page_handlers

__all__ = ["TEMPLATE_DIRECTORY", "share_page_handlers"]
