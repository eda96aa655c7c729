"""The Subscription root: live media state over graphql-transport-ws and graphql-sse."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from api.context import Info
from api.ids import require_media_id
from api.types import Media

MediaIdArgument = Annotated[strawberry.ID, strawberry.argument(description="The media id.")]


async def resolve_media_updated(info: Info, id: MediaIdArgument) -> AsyncGenerator[Media, None]:
    """The media now, then each change until SUCCESS or FAILED."""
    context = info.context
    watched = context.service.library.watch(context.principal, require_media_id(id))
    async for media in watched:
        context.check_caller()  # a socket may outlive its token
        yield Media.of(media)


@strawberry.type(description="Live updates.")
class Subscription:
    """Live updates."""

    media_updated = strawberry.subscription(
        resolver=resolve_media_updated,
        description=(
            "The media's current state first, then every change until it is SUCCESS or FAILED"
            " (then the stream completes). Same visibility as `media`: an absent or another"
            " user's media is NOT_FOUND."
        ),
    )
