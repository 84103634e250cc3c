"""Celery workers that hash, probe, validate and transcode originals (built in its own issue)."""
