"""The app of one API process of ``evidence serve --workers N``.

uvicorn's supervisor starts each process afresh and imports the app by name, so nothing can
be handed over in memory: the settings come from the environment, where ``serve`` has put
every one it was given (:func:`export_settings`). The work done once per start (migrations,
queueing again what the last shutdown interrupted, the embedded worker) stays with the
supervisor; each process builds its own connections.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from evidence.http.app import create_app
from evidence.http.limits import uvicorn_options
from evidence.settings import Settings

IMPORT_NAME = "evidence.http.factory:app_from_environment"


def export_settings(settings: Settings) -> None:
    """Put what the command line chose (data dir, host, port) where the API processes read
    their settings; the rest came from the environment already."""
    os.environ["EVIDENCE_DATA_DIR"] = str(settings.data_path)
    os.environ["EVIDENCE_HOST"] = settings.host
    os.environ["EVIDENCE_PORT"] = str(settings.port)


def app_from_environment() -> FastAPI:
    settings = Settings()
    # This process's request-head bound: a class attribute, set here for the protocol class
    # that this process imported afresh.
    uvicorn_options(settings)
    return create_app(settings, prepare=False)
