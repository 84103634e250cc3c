"""Reading ``/readyz``: which dependencies it reports down.

The contract (issue 12): ``/readyz`` answers 503 while a dependency is down, and its JSON
names the dependency (``database``, ``storage``, ``broker``) and its state. Read here as:
wherever a dependency's name is a key, its value is its state; a state is fine when it is
true, or a word like "ok", or an object whose ``ok``/``status``/``state`` says so."""

from __future__ import annotations

from typing import Any

import requests

DEPENDENCIES = ("database", "storage", "broker")
FINE = {"ok", "up", "ready", "available", "reachable", "healthy"}


def readyz(url: str) -> tuple[int, Any]:
    response = requests.get(f"{url}/readyz", timeout=30)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def reported(body: Any) -> dict[str, bool]:
    """{dependency: fine?} for each dependency the body names."""
    found: dict[str, bool] = {}
    if isinstance(body, dict):
        for key, value in body.items():
            if key in DEPENDENCIES:
                found[key] = _fine(value)
            else:
                found.update(reported(value))
    elif isinstance(body, list):
        for value in body:
            if isinstance(value, dict) and value.get("name") in DEPENDENCIES:
                found[value["name"]] = _fine(value)
            else:
                found.update(reported(value))
    return found


def _fine(state: Any) -> bool:
    if isinstance(state, bool):
        return state
    if isinstance(state, str):
        return state.lower() in FINE
    if isinstance(state, dict):
        for key in ("ok", "healthy", "up", "ready"):
            if isinstance(state.get(key), bool):
                return bool(state[key])
        for key in ("status", "state"):
            if isinstance(state.get(key), str):
                return str(state[key]).lower() in FINE
    return False


def down(body: Any) -> set[str]:
    return {name for name, fine in reported(body).items() if not fine}
