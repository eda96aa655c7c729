"""The MediaError tree. Errors carry data, not prose; each class says how every edge answers it.

`code` is the GraphQL `extensions.code`, `status_code` the HTTP status (as Litestar's exceptions
carry theirs) and `retry_after_s` the `Retry-After` of a refusal that passes (docs/security.md
§2.5). Edges read these attributes; none keeps a table of its own.
"""

from __future__ import annotations

from collections.abc import Callable


class MediaError(Exception):
    """Base of every error the core raises on purpose; as such, a bug (INTERNAL, 500)."""

    code = "INTERNAL"
    status_code = 500
    retry_after_s: int | None = None

    def __init__(self, detail: str = "", **data: object) -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail
        self.data = data

    def message(self, spell: Callable[[str], str] = str) -> str:
        """The detail, with `{field}` replaced by the field's name as `spell` writes it."""
        field = self.data.get("field")
        if not isinstance(field, str):
            return self.detail
        return self.detail.replace("{field}", spell(field))

    @property
    def expected(self) -> bool:
        """True for refusals answered on purpose; False for bugs, masked as INTERNAL."""
        return self.status_code != 500


class ConfigError(MediaError):
    """A setting is missing or malformed; `data['variable']` names it."""

    code = "CONFIG"


class Unauthenticated(MediaError):
    """No credentials, or credentials that do not verify."""

    code = "UNAUTHENTICATED"
    status_code = 401


class Forbidden(MediaError):
    """The caller is known but lacks the scope for this action."""

    code = "FORBIDDEN"
    status_code = 403


class InvalidSignature(Forbidden):
    """A signed URL failed a check; the reason stays in the log, never in the answer."""


class NotFound(MediaError):
    """Absent, or not visible to the caller (no existence leak)."""

    code = "NOT_FOUND"
    status_code = 404


class InvalidInput(MediaError):
    """Bad input; `data['field']` names the offending field as the core names it (`size_bytes`)
    when there is one, and `{field}` in the detail stands for that name as the edge spells it."""

    code = "BAD_USER_INPUT"
    status_code = 400


class UnsupportedMediaType(InvalidInput):
    """A type outside the allow-list, or bytes that do not match the declared type."""

    status_code = 415


class Conflict(MediaError):
    """The request does not fit the current state (second PUT, finished upload)."""

    code = "CONFLICT"
    status_code = 409


class TooLarge(MediaError):
    """More bytes than allowed; `data['limit']` holds the limit."""

    code = "BAD_USER_INPUT"
    status_code = 413


class LengthRequired(InvalidInput):
    """An upload without Content-Length."""

    status_code = 411


class UploadTimeout(InvalidInput):
    """An upload body stalled longer than the idle timeout."""

    status_code = 408


class RateLimited(MediaError):
    """A documented bound was reached; retry later."""

    code = "RATE_LIMITED"
    status_code = 429
    retry_after_s = 5


class Unavailable(MediaError):
    """A dependency is down; `data['dependency']` is storage, database or oidc."""

    code = "UNAVAILABLE"
    status_code = 503
    retry_after_s: int = 5

    @property
    def dependency(self) -> str:
        """Which dependency failed."""
        return str(self.data.get("dependency", "unknown"))


class CorruptObject(Unavailable):
    """A stored object failed authentication (tampered, truncated, moved); never served as is."""
