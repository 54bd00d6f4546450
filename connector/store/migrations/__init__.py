"""Alembic environment and migrations for Relay's database (shipped inside the package)."""
