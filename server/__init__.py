"""Composition root: builds the one Litestar app, the dev issuer routes and the CLI."""
