"""Whom a ledger entry names as its actor.

A person is ``user:<email>`` (:func:`evidence.accounts.access.actor_of`), whether they acted
through the API, the pages or the command line with their token; a link is ``link:<id>
(<recipient>)``; a component of the service is ``system:<component>``. Maintenance on the
server host that no person's token stands behind (migrations, cleanup, key rotation, the
first admin's account) is the service account, :data:`SERVICE`.

Actors name no host: entries are shown to reviewers outside the force, and the ledger is no
place for the layout of our machines (which also changes when hosts are replaced).
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from typing import Any

# In the ``operator:`` form that entries written before it used (``operator:<OS user>``), so
# every report reads old and new alike as the service account.
SERVICE = "operator:service"


def system_actor(component: str) -> str:
    return f"system:{component}"


def attributed(actor: str, details: Mapping[str, Any]) -> dict[str, Any]:
    """``details``, and for the service account the OS user who ran the command, as
    ``run_by``. Written as an operator actor of the older form (``operator:root``), so it is
    kept in the record and shown in a statement, like those, as "service account": an OS
    user name is a server internal."""
    if actor != SERVICE:
        return dict(details)
    return {**details, "run_by": f"operator:{getpass.getuser()}"}
