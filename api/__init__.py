"""GraphQL edge (Strawberry): schema, resolvers, error codes, limits and the offline GraphiQL."""

from api.controller import graphql_controller

__all__ = ["graphql_controller"]
