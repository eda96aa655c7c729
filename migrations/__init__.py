"""Piccolo migrations of the media app: additive only, valid on SQLite and PostgreSQL."""
