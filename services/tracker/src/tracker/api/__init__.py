"""The tracker API (`python -m tracker.api`): status, images, output CSV and progress streams."""

from .app import create_app

__all__ = ["create_app"]
