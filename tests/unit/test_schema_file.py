"""schema.graphql is the exported SDL, and the contract of docs/architecture.md §3 is in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    build_schema,
)

from api.schema import schema_sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"

# type -> {field: type as printed}; docs/architecture.md §3, the core that clients rely on.
CONTRACT: dict[str, dict[str, str]] = {
    "Query": {
        "me": "Viewer!",
        "media": "Media",
        "medias": "MediaConnection!",
        "shareLinks": "ShareLinkConnection!",
        "sharedMedia": "SharedMediaSet",
    },
    "Mutation": {
        "createUpload": "UploadTicket!",
        "completeUpload": "Media!",
        "deleteMedia": "Boolean!",
        "revokeMediaUrls": "Media!",
        "createShareLink": "ShareLink!",
        "revokeShareLink": "Boolean!",
    },
    # DESIGN §8.4, except SharedMediaSet.medias: the anonymous SharedMedia, not the owner's Media.
    "CreateShareLinkInput": {
        "mediaIds": "[ID!]!",
        "expiresIn": "Int!",
        "allowDownload": "Boolean",
        "password": "String",
        "title": "String",
    },
    "ShareLink": {
        "id": "ID!",
        "token": "String!",
        "url": "String!",
        "title": "String",
        "expiresAt": "DateTime!",
        "allowDownload": "Boolean!",
        "hasPassword": "Boolean!",
        "viewCount": "Int!",
        "medias": "[Media!]!",
    },
    "SharedMediaSet": {"title": "String", "expiresAt": "DateTime!", "medias": "[SharedMedia!]!"},
    "Viewer": {"subject": "String!", "issuer": "String!", "scopes": "[String!]!"},
    "CreateUploadInput": {
        "fileName": "String!",
        "mediaType": "String!",
        "sizeBytes": "Float!",
        "mediaDate": "DateTime",
    },
    "UploadTicket": {
        "uploadId": "ID!",
        "uploadUrl": "String!",
        "method": "String!",
        "headers": "[HttpHeader!]!",
        "expiresAt": "DateTime!",
        "maxBytes": "Float!",
        "media": "Media!",
    },
    "HttpHeader": {"name": "String!", "value": "String!"},
    "Media": {
        "id": "ID!",
        "name": "String!",
        "mediaType": "String!",
        "kind": "MediaKind!",
        "status": "UploadStatus!",
        "failureReason": "String",
        "sizeBytes": "Float",
        "mediaDate": "DateTime",
        "createdAt": "DateTime!",
        "width": "Int",
        "height": "Int",
        "durationSeconds": "Float",
        "hasThumbnail": "Boolean!",
        "streamUrl": "SignedUrl",
        "downloadUrl": "SignedUrl",
        "thumbnailUrl": "SignedUrl",
    },
    "SignedUrl": {"url": "String!", "expiresAt": "DateTime!"},
    "MediaConnection": {"edges": "[MediaEdge!]!", "pageInfo": "PageInfo!"},
    "MediaEdge": {"cursor": "String!", "node": "Media!"},
    "PageInfo": {
        "hasNextPage": "Boolean!",
        "endCursor": "String",
        "hasPreviousPage": "Boolean!",
        "startCursor": "String",
    },
    "MediaFilter": {
        "kind": "MediaKind",
        "status": "UploadStatus",
        "mediaDateFrom": "DateTime",
        "mediaDateTo": "DateTime",
        "nameContains": "String",
    },
}
ARGUMENTS = {
    ("Query", "media"): {"id": "ID!"},
    ("Query", "medias"): {"first": "Int", "after": "String", "filter": "MediaFilter"},
    ("Query", "shareLinks"): {"first": "Int", "after": "String"},
    ("Query", "sharedMedia"): {"token": "String!", "password": "String"},
    ("Mutation", "createShareLink"): {"input": "CreateShareLinkInput!"},
    ("Mutation", "revokeShareLink"): {"id": "ID!"},
    ("Mutation", "createUpload"): {"input": "CreateUploadInput!"},
    ("Mutation", "completeUpload"): {"uploadId": "ID!"},
    ("Mutation", "deleteMedia"): {"id": "ID!"},
    ("Mutation", "revokeMediaUrls"): {"id": "ID!"},
    ("Media", "streamUrl"): {"expiresIn": "Int"},
    ("Media", "downloadUrl"): {"expiresIn": "Int"},
    ("Media", "thumbnailUrl"): {"expiresIn": "Int"},
}
ENUMS = {"MediaKind": {"VIDEO", "IMAGE"}, "UploadStatus": {"IN_PROGRESS", "SUCCESS", "FAILED"}}


def test_schema_file_is_the_exported_sdl() -> None:
    assert SCHEMA_FILE.read_text() == schema_sdl(), (
        "schema.graphql is stale: run `media-service export-schema --output schema.graphql`"
    )


@pytest.mark.parametrize("type_name", sorted(CONTRACT))
def test_contract_fields_keep_their_types(type_name: str) -> None:
    graphql_type = build_schema(schema_sdl()).type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType | GraphQLInputObjectType)
    actual = {name: str(field.type) for name, field in graphql_type.fields.items()}
    for field, printed in CONTRACT[type_name].items():
        assert actual.get(field) == printed, f"{type_name}.{field}"


@pytest.mark.parametrize(("owner", "arguments"), sorted(ARGUMENTS.items()))
def test_contract_arguments_keep_their_types(
    owner: tuple[str, str], arguments: dict[str, str]
) -> None:
    graphql_type = build_schema(schema_sdl()).type_map[owner[0]]
    assert isinstance(graphql_type, GraphQLObjectType)
    field = graphql_type.fields[owner[1]]
    assert {name: str(arg.type) for name, arg in field.args.items()} == arguments


def test_medias_first_defaults_to_20() -> None:
    query = build_schema(schema_sdl()).query_type
    assert query is not None
    node = query.fields["medias"].args["first"].ast_node
    assert node is not None and node.default_value is not None
    assert getattr(node.default_value, "value", None) == "20"


@pytest.mark.parametrize(("name", "values"), sorted(ENUMS.items()))
def test_contract_enums(name: str, values: set[str]) -> None:
    enum = build_schema(schema_sdl()).type_map[name]
    assert isinstance(enum, GraphQLEnumType)
    assert set(enum.values) == values


def test_every_type_field_and_argument_has_a_description() -> None:
    schema = build_schema(schema_sdl())
    missing: list[str] = []
    for name, graphql_type in schema.type_map.items():
        if name.startswith("__") or name in ("String", "Boolean", "Int", "Float", "ID"):
            continue
        if not graphql_type.description:
            missing.append(name)
        fields = getattr(graphql_type, "fields", {})
        for field_name, field in fields.items():
            if not field.description:
                missing.append(f"{name}.{field_name}")
            for arg_name, arg in getattr(field, "args", {}).items():
                if not arg.description:
                    missing.append(f"{name}.{field_name}({arg_name})")
    assert missing == []
