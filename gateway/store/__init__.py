"""Persistence: tables, repositories, outbox, audit log, migrations."""
