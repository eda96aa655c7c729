"""The MediaError tree. Errors carry data, not prose; each edge maps them in one place."""

from __future__ import annotations


class MediaError(Exception):
    """Base of every error the core raises on purpose."""

    code = "INTERNAL"

    def __init__(self, detail: str = "", **data: object) -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail
        self.data = data


class ConfigError(MediaError):
    """A setting is missing or malformed; `data['variable']` names it."""

    code = "CONFIG"


class Unauthenticated(MediaError):
    """No credentials, or credentials that do not verify."""

    code = "UNAUTHENTICATED"


class Forbidden(MediaError):
    """The caller is known but lacks the scope for this action."""

    code = "FORBIDDEN"


class InvalidSignature(Forbidden):
    """A signed URL failed a check; the reason stays in the log, never in the answer."""


class NotFound(MediaError):
    """Absent, or not visible to the caller (no existence leak)."""

    code = "NOT_FOUND"


class InvalidInput(MediaError):
    """Bad input; `data['field']` names the offending field when there is one."""

    code = "BAD_USER_INPUT"


class UnsupportedMediaType(InvalidInput):
    """A type outside the allow-list, or bytes that do not match the declared type."""


class Conflict(MediaError):
    """The request does not fit the current state (second PUT, finished upload)."""

    code = "CONFLICT"


class TooLarge(MediaError):
    """More bytes than allowed; `data['limit']` holds the limit."""

    code = "BAD_USER_INPUT"


class LengthRequired(InvalidInput):
    """An upload without Content-Length."""


class UploadTimeout(InvalidInput):
    """An upload body stalled longer than the idle timeout."""


class RateLimited(MediaError):
    """A documented bound was reached; retry later."""

    code = "RATE_LIMITED"


class Unavailable(MediaError):
    """A dependency is down; `data['dependency']` is storage, database or oidc."""

    code = "UNAVAILABLE"

    @property
    def dependency(self) -> str:
        """Which dependency failed."""
        return str(self.data.get("dependency", "unknown"))


class CorruptObject(Unavailable):
    """A stored object failed authentication (tampered, truncated, moved); never served as is."""
