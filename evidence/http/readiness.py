"""``/readyz``: can this node serve right now, and if not, which dependency is down.

Each dependency is checked in a thread of its own, all at once, and each gets a short time
to answer: a load balancer asks often, and a dead database must not make the answer itself
hang. A check that overruns is reported and left to finish on its own (its connect timeout
ends it). Reasons are short and name no host, path or bucket: the route needs no sign-in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Literal

from pydantic import Field

from evidence.http.outage import outage_of
from evidence.http.views import View

CHECK_SECONDS = 3.0


class DependencyCheck(View):
    status: Literal["ok", "unavailable"]
    reason: str | None = Field(description="Why it is unavailable, in a few words; null when ok")


class Readiness(View):
    status: Literal["ready", "unavailable"] = Field(description="ready when every dependency is ok")
    dependencies: dict[str, DependencyCheck] = Field(
        description="database, storage and (when a broker is configured) broker, each checked just now")


async def check_all(checks: Mapping[str, Callable[[], object]], timeout: float = CHECK_SECONDS) -> Readiness:
    names = list(checks)
    results = await asyncio.gather(*(_check(checks[name], timeout) for name in names))
    dependencies = dict(zip(names, results, strict=True))
    ready = all(check.status == "ok" for check in dependencies.values())
    return Readiness(status="ready" if ready else "unavailable", dependencies=dependencies)


async def _check(probe: Callable[[], object], timeout: float) -> DependencyCheck:
    loop = asyncio.get_running_loop()
    # The loop's default executor, not the request thread pool: a probe stuck on a dead
    # host must not take a thread that requests need.
    future = loop.run_in_executor(None, probe)
    try:
        await asyncio.wait_for(future, timeout)
    except TimeoutError:
        return DependencyCheck(status="unavailable", reason=f"no answer within {timeout:g} s")
    except Exception as error:  # report it: this is what readiness is for
        kind = type(error).__name__
        reason = f"cannot connect ({kind})" if outage_of(error) is not None else kind
        return DependencyCheck(status="unavailable", reason=reason)
    return DependencyCheck(status="ok", reason=None)
