"""Scenario 5: server CPU of `medias(first: 100)` with every field vs `{ __typename }`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from bench.procs import Proc
from bench.report import Row
from bench.scenarios import Outcome, Plan
from bench.seed import SUBJECT
from bench.stack import Service, Stack
from bench.wrk import run_wrk, write_scripts, wrk_binary
from server.lifecycle import dev_issuer

PAGE_QUERY = """
query Page {
  medias(first: 100) {
    edges { cursor node {
      id name mediaType kind status failureReason sizeBytes mediaDate createdAt updatedAt
      width height durationSeconds hasThumbnail
      streamUrl { url expiresAt } downloadUrl { url expiresAt } thumbnailUrl { url expiresAt }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
TYPENAME_QUERY = "{ __typename }"
TARGET_CPU_MS = 20.0


def _token(service: Service) -> str:
    settings = service.settings
    issuer = dev_issuer(settings, str(settings.public_url))
    return issuer.mint(SUBJECT, ["user"], audience=settings.oidc_audience)


def _check_page(url: str, token: str, expected: int) -> None:
    """One request by hand: the page must hold `expected` media with three URLs each."""
    body = httpx.post(
        f"{url}/graphql",
        json={"query": PAGE_QUERY},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    edges = (body.get("data") or {}).get("medias", {}).get("edges", [])
    complete = [
        e for e in edges if all(e["node"][f] for f in ("streamUrl", "downloadUrl", "thumbnailUrl"))
    ]
    if body.get("errors") or len(complete) != expected:
        raise RuntimeError(
            f"GraphQL page check failed: {len(complete)} complete of {expected}: "
            f"{str(body.get('errors'))[:500]}"
        )


def _cpu_ms(proc: Proc, url: str, query: str, token: str, plan: Plan, folder: Path) -> float:
    _, post_lua = write_scripts(folder)
    body = folder / f"query-{abs(hash(query))}.json"
    body.write_text(json.dumps({"query": query}))
    args = (str(body), token)
    run_wrk(url, post_lua, connections=1, limit=20, seconds=1, script_args=args)  # warm-up
    before = proc.cpu_seconds()
    result = run_wrk(
        url,
        post_lua,
        connections=1,
        limit=plan.graphql_limit,
        seconds=plan.load_seconds,
        script_args=args,
    )
    if result.errors or not result.requests:
        raise RuntimeError(f"GraphQL load: {result.errors} errors in {result.requests} requests")
    return (proc.cpu_seconds() - before) / result.requests * 1000


def run(plan: Plan, stack: Stack) -> Outcome:
    """Server CPU per request for the full page and for the trivial query, c=1."""
    if wrk_binary() is None:
        return Outcome(notes=["wrk not installed: GraphQL scenario skipped"])
    service = stack.local()
    token = _token(service)
    _check_page(service.url, token, stack.listing)
    url = f"{service.url}/graphql"
    page = _cpu_ms(service.proc, url, PAGE_QUERY, token, plan, stack.tmp)
    trivial = _cpu_ms(service.proc, url, TYPENAME_QUERY, token, plan, stack.tmp)
    row = Row(
        "5 GraphQL c=1",
        f"medias(first: {stack.listing}), every field",
        "ms CPU/req",
        page,
        {"__typename": trivial},
        "<= 20 ms",
        page <= TARGET_CPU_MS,
    )
    return Outcome(rows=[row])
