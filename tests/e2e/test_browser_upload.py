"""A real browser uploads from a page on another loopback origin: one PUT, and in parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_browser import CHROMIUM_ARGS, chromium_path, site
from tests.support.app import RunningService
from tests.support.media_files import make_png
from tests.support.multipart import MiB, sha256_hex

pytestmark = pytest.mark.browser

# Runs in the page: the GraphQL calls with a bearer token, the bytes with fetch() PUTs.
SCRIPT = """async ({api, token, multipart}) => {
  const gql = async (query, variables) => {
    const answer = await fetch(api + '/graphql', {method: 'POST',
      headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token},
      body: JSON.stringify({query, variables})});
    const body = await answer.json();
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const file = await (await fetch(multipart ? '/big.png' : '/small.png')).blob();
  const input = {fileName: 'browser.png', mediaType: 'image/png', sizeBytes: file.size};
  let uploadId, etags = [];
  if (!multipart) {
    const ticket = (await gql(`mutation($input: CreateUploadInput!) {
      createUpload(input: $input) { uploadId uploadUrl headers { name value } } }`,
      {input})).createUpload;
    const put = await fetch(ticket.uploadUrl, {method: 'PUT', body: file,
      headers: {'Content-Type': 'image/png'}});
    if (put.status !== 202) throw new Error('PUT ' + put.status + ' ' + await put.text());
    uploadId = ticket.uploadId;
  } else {
    const upload = (await gql(`mutation($input: CreateUploadInput!) {
      createMultipartUpload(input: $input, partSize: 5242880) { uploadId partSize partCount } }`,
      {input})).createMultipartUpload;
    uploadId = upload.uploadId;
    const numbers = [...Array(upload.partCount).keys()].map(i => i + 1);
    const urls = (await gql(`mutation($id: ID!, $numbers: [Int!]!) {
      signUploadParts(uploadId: $id, partNumbers: $numbers) { partNumber url } }`,
      {id: uploadId, numbers})).signUploadParts;
    etags = await Promise.all(urls.map(async ({partNumber, url}) => {
      const start = (partNumber - 1) * upload.partSize;
      const put = await fetch(url, {method: 'PUT',
        body: file.slice(start, start + upload.partSize)});
      if (put.status !== 200) throw new Error('part ' + put.status + ' ' + await put.text());
      return put.headers.get('ETag');
    }));
  }
  // Processing is a queued job: ask again until it ended (bounded: 300 tries, 30 s).
  let media;
  for (let tries = 0; tries < 300; tries++) {
    media = (await gql(`mutation($id: ID!) { completeUpload(uploadId: $id) {
      id status failureReason sizeBytes streamUrl { url } } }`, {id: uploadId})).completeUpload;
    if (media.status !== 'IN_PROGRESS') break;
    await new Promise(done => setTimeout(done, 100));
  }
  return {media, etags};
}"""


def test_a_page_on_another_origin_uploads_whole_and_in_parts(
    embedded_service: RunningService, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    small = make_png(tmp_path / "small.png").read_bytes()
    big_path = make_png(tmp_path / "big.png")
    with big_path.open("ab") as handle:
        handle.truncate(12 * MiB)  # trailing zeros: three parts, quick to process
    big = big_path.read_bytes()
    files = {
        "/": ("text/html", b"<!doctype html><title>uploader</title>"),
        "/small.png": ("image/png", small),
        "/big.png": ("image/png", big),
    }
    token = embedded_service.token("browser-user")
    results: dict[bool, Any] = {}
    with site(files) as origin, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(origin)
            for multipart in (False, True):
                args = {"api": embedded_service.url, "token": token, "multipart": multipart}
                results[multipart] = page.evaluate(SCRIPT, args)
        finally:
            browser.close()
    for multipart, data in ((False, small), (True, big)):
        media = results[multipart]["media"]
        assert media["status"] == "SUCCESS", media
        assert media["sizeBytes"] == len(data)
        streamed = httpx.get(media["streamUrl"]["url"], timeout=60).content
        assert sha256_hex(streamed) == sha256_hex(data)
    # The part answers' ETag header is readable by the page (exposed through CORS).
    etags = results[True]["etags"]
    assert len(etags) == 3 and all(etag and etag.startswith('"') for etag in etags), etags
