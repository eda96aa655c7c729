"""`@counted_url_check`: each verdict on a signed URL, as media_signed_url_checks_total{result}."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from media.errors import InvalidSignature
from media.telemetry.metrics import URL_CHECKS
from media.telemetry.tally import counter_tally

P = ParamSpec("P")
T = TypeVar("T")

# The reasons InvalidSignature carries, folded into a few label values (free text never is one).
_RESULTS = {
    "max_age": "expired",
    "expired": "expired",
    "upload expired": "expired",
    "bad_signature": "bad_signature",
    "too_long": "malformed",
    "malformed": "malformed",
    "non_canonical": "malformed",
    "version": "malformed",
    "wrong_purpose": "wrong_purpose",
    "purpose_mismatch": "wrong_purpose",
    "unknown_key": "unknown_key",
    "revoked": "revoked",
    "media absent": "absent",
    "upload absent": "absent",
    "object unknown": "absent",
    "no thumbnail": "absent",
    "media not ready": "not_ready",
    "ticket mismatch": "mismatch",
    # URLs minted through a share link end with the link.
    "link revoked": "link_revoked",
    "link expired": "expired",
    "not in link": "link_refused",
    "download not allowed": "link_refused",
}
_COUNTERS = {
    result: counter_tally(URL_CHECKS.labels(result))
    for result in {"ok", "other", *_RESULTS.values()}
}


def result_of(reason: object) -> str:
    """The label value of a refusal reason."""
    return _RESULTS.get(str(reason), "other")


def counted_url_check(check: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Count `ok` when `check` returns, the folded reason when it raises InvalidSignature.

    Other errors (a database outage, a body too large after the URL was accepted) are no verdict
    on the URL and are not counted."""

    @functools.wraps(check)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            result = await check(*args, **kwargs)
        except InvalidSignature as exc:
            _COUNTERS[result_of(exc.data.get("reason"))].add()
            raise
        _COUNTERS["ok"].add()
        return result

    return counted
