"""The GraphQL documents tests send, in one place; each selects every field some test reads.

A test that checks one document's exact shape (tests/integration/test_graphql_api.py) or a
hostile query keeps its own."""

from __future__ import annotations

ME = "query { me { subject scopes } }"
# The smallest answer, for tests that compare whole HTTP bodies.
SUBJECT = "{ me { subject } }"
LIST = "query { medias(first: 50) { edges { node { id name status } } pageInfo { hasNextPage } } }"
MEDIA = """query($id: ID!) { media(id: $id) {
  id name status kind mediaType failureReason sizeBytes mediaDate width height durationSeconds
  hasThumbnail sha256 playbackMediaType thumbhash processingStage videoCodec audioCodec
  cameraMake cameraModel latitude longitude
  streamUrl { url expiresAt } downloadUrl { url } thumbnailUrl { url } } }"""
DELETE = "mutation($id: ID!) { deleteMedia(id: $id) }"
REVOKE = "mutation($id: ID!) { revokeMediaUrls(id: $id) { id streamUrl { url } } }"
SUBSCRIBE = "subscription($id: ID!) { mediaUpdated(id: $id) { id status failureReason } }"

# Uploads: one PUT, or in parts.
CREATE = """mutation($input: CreateUploadInput!) {
  createUpload(input: $input) { uploadId uploadUrl method headers { name value } maxBytes
    expiresAt media { id status } } }"""
COMPLETE = """mutation($id: ID!) { completeUpload(uploadId: $id) {
  id name status kind mediaType width height durationSeconds hasThumbnail sizeBytes sha256
  failureReason streamUrl { url expiresAt } downloadUrl { url } } }"""
# Without the signed URLs, which change by the second: repeated answers compare equal.
COMPLETE_STATE = "mutation($id: ID!) { completeUpload(uploadId: $id) { id status failureReason } }"
CREATE_MULTIPART = """mutation($input: CreateUploadInput!, $partSize: Float) {
  createMultipartUpload(input: $input, partSize: $partSize) {
    uploadId partSize partCount sizeBytes expiresAt receivedParts { partNumber }
    media { id status } } }"""
SIGN_PARTS = """mutation($id: ID!, $numbers: [Int!]!) {
  signUploadParts(uploadId: $id, partNumbers: $numbers) {
    partNumber url method headers { name value } sizeBytes expiresAt } }"""
UPLOAD = """query($id: ID!) { upload(uploadId: $id) {
  uploadId partSize partCount sizeBytes receivedParts { partNumber sizeBytes etag }
  media { id status } } }"""
ABORT = "mutation($id: ID!) { abortUpload(uploadId: $id) }"

# Share links.
CREATE_LINK = """mutation($input: CreateShareLinkInput!) { createShareLink(input: $input) {
  id token url title expiresAt allowDownload hasPassword viewCount medias { id name } } }"""
SHARED = """query($token: String!, $password: String) {
  sharedMedia(token: $token, password: $password) { title expiresAt allowDownload
    medias { id kind mediaType playbackMediaType thumbhash width height durationSeconds hasThumbnail
      streamUrl { url expiresAt } thumbnailUrl { url expiresAt }
      downloadUrl { url expiresAt } } } }"""
LINKS = """query($first: Int, $after: String) { shareLinks(first: $first, after: $after) {
  edges { cursor node { id token title viewCount hasPassword expiresAt medias { id } } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
REVOKE_LINK = "mutation($id: ID!) { revokeShareLink(id: $id) }"
