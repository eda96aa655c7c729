"""bound_sends: a body send that waits too long cuts the response, and nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streaming.send_timeout import bound_sends

TIMEOUT_S = 0.05
SCOPE = {"type": "http", "method": "GET", "path": "/media/x", "headers": []}


async def _receive() -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("never")


def _server_send(stall: asyncio.Event | None) -> Any:
    """A server's send whose body sends wait until `stall` is set (never, when it is unset)."""

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and stall is not None:
            await stall.wait()

    return send


async def _body_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"x", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _in_own_task(app: Any, send: Any) -> int:
    """Run `app` bounded in a task of its own, as the server does; that task's cancel count."""

    async def run() -> int:
        await bound_sends(app, TIMEOUT_S)(SCOPE, _receive, send)
        task = asyncio.current_task()
        assert task is not None
        await asyncio.sleep(0.01)  # a cancellation left pending would land here
        return task.cancelling()

    return await asyncio.wait_for(asyncio.create_task(run()), timeout=5)


async def test_a_stalled_send_ends_the_response_and_the_task_goes_on() -> None:
    assert await _in_own_task(_body_app, _server_send(asyncio.Event())) == 0


async def test_slow_sends_within_the_timeout_are_not_cut() -> None:
    sent: list[bytes] = []

    async def slow(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            await asyncio.sleep(TIMEOUT_S / 2)
            sent.append(message["body"])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(6):  # three timeouts in all, each send well within one
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    await bound_sends(app, TIMEOUT_S)(SCOPE, _receive, slow)
    assert sent == [b"x"] * 6 + [b""]


async def test_a_wait_that_is_not_a_send_is_not_cut() -> None:
    async def thinking(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(3 * TIMEOUT_S)  # e.g. a storage read: bounded elsewhere
        await _body_app(scope, receive, send)

    await bound_sends(thinking, TIMEOUT_S)(SCOPE, _receive, _server_send(None))


async def test_another_cancellation_before_the_cut_goes_on() -> None:
    app = bound_sends(_body_app, TIMEOUT_S)
    task = asyncio.create_task(app(SCOPE, _receive, _server_send(asyncio.Event())))
    await asyncio.sleep(TIMEOUT_S / 5)
    task.cancel()  # the server shutting down, say
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_another_cancellation_after_the_cut_goes_on() -> None:
    cut = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await _body_app(scope, receive, send)
        except asyncio.CancelledError:
            cut.set()
            await asyncio.sleep(3600)  # cleaning up, slowly, when the server stops
            raise

    task = asyncio.create_task(
        bound_sends(app, TIMEOUT_S)(SCOPE, _receive, _server_send(asyncio.Event()))
    )
    await asyncio.wait_for(cut.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_app_that_catches_the_cut_leaves_no_cancellation_behind() -> None:
    caught: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await _body_app(scope, receive, send)
        except asyncio.CancelledError:
            caught.append(True)

    assert await _in_own_task(app, _server_send(asyncio.Event())) == 0
    assert caught == [True]


async def test_sends_after_a_caught_cut_fail_at_once() -> None:
    outcomes: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await _body_app(scope, receive, send)
        except asyncio.CancelledError:
            outcomes.append("cut")
        try:  # a send that would wait forever, after the cut
            await send({"type": "http.response.body", "body": b"y", "more_body": True})
        except asyncio.CancelledError:
            outcomes.append("refused")
            raise

    assert await _in_own_task(app, _server_send(asyncio.Event())) == 0
    assert outcomes == ["cut", "refused"]


async def test_a_cut_turned_into_another_error_leaves_no_cancellation_behind() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await _body_app(scope, receive, send)
        except asyncio.CancelledError:
            raise RuntimeError("the stream broke") from None

    async def run() -> int:
        with pytest.raises(RuntimeError):
            await bound_sends(app, TIMEOUT_S)(SCOPE, _receive, _server_send(asyncio.Event()))
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert await asyncio.wait_for(asyncio.create_task(run()), timeout=5) == 0


async def test_many_responses_share_one_sweep_and_each_stalled_one_is_cut_in_time() -> None:
    app = bound_sends(_body_app, TIMEOUT_S)  # one app: every response goes through its sweeps
    loop = asyncio.get_running_loop()
    cut_after: list[float] = []

    async def stalled(delay: float) -> None:
        await asyncio.sleep(delay)  # started at different points of the sweep's period
        started = loop.time()
        await app(SCOPE, _receive, _server_send(asyncio.Event()))
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        cut_after.append(loop.time() - started)

    async def finishing(delay: float) -> None:
        await asyncio.sleep(delay)
        await app(SCOPE, _receive, _server_send(None))

    delays = [i * TIMEOUT_S / 7 for i in range(14)]
    runs = [stalled(d) for d in delays] + [finishing(d) for d in delays]
    await asyncio.wait_for(asyncio.gather(*runs), timeout=5)
    assert len(cut_after) == len(delays)
    # Cut once the send has waited the timeout, and within a sweep period after it (with room
    # for a busy machine's late timers).
    assert all(TIMEOUT_S <= after < TIMEOUT_S * 1.25 + 0.1 for after in cut_after), cut_after


async def test_a_response_after_a_quiet_spell_is_still_cut() -> None:
    # The sweep sleeps while nothing is under way; the next response must wake it.
    app = bound_sends(_body_app, TIMEOUT_S)
    await app(SCOPE, _receive, _server_send(None))
    await asyncio.sleep(3 * TIMEOUT_S)
    cancelled: list[bool] = []

    async def run() -> None:
        try:
            await app(SCOPE, _receive, _server_send(asyncio.Event()))
        finally:
            task = asyncio.current_task()
            assert task is not None
            cancelled.append(task.cancelling() == 0)

    await asyncio.wait_for(asyncio.create_task(run()), timeout=5)
    assert cancelled == [True]
