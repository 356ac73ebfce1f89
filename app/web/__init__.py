"""Blueprints: health, auth pages, event and waiting-room pages, the JSON API."""
