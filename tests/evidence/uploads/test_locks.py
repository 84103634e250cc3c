"""evidence.uploads.locks.PostgresLocker: one request at a time per upload across API
nodes, with PostgreSQL advisory locks; a lock that stays taken is 423 Locked after the
timeout; each lock's connection goes back when it is released."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from sqlalchemy import Engine, QueuePool, create_engine, text

from evidence.uploads.locks import PostgresLocker, lock_key
from transfer.errors import Locked

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

UPLOAD = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def engines(postgres_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines: two API nodes on one database."""
    made = (create_engine(postgres_url), create_engine(postgres_url))
    yield made
    for engine in made:
        engine.dispose()


def held(engine: Engine) -> int:
    """Advisory locks held in this test's database (others run on the same server)."""
    query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                 " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def test_the_key_is_a_stable_signed_64_bit_number() -> None:
    assert lock_key(UPLOAD) == lock_key(UPLOAD) != lock_key("f" * 32)
    assert all(-(2**63) <= lock_key(f"{n:032x}") < 2**63 for n in range(200))
    assert any(lock_key(f"{n:032x}") < 0 for n in range(200))  # the whole range, both signs


async def test_two_nodes_take_turns_on_one_upload(engines: tuple[Engine, Engine]) -> None:
    first, second = PostgresLocker(engines[0], timeout=5), PostgresLocker(engines[1], timeout=0.3)
    async with first.lock(UPLOAD):
        assert held(engines[0]) == 1
        with pytest.raises(Locked):
            async with second.lock(UPLOAD):
                pass
        async with second.lock("f" * 32):  # another upload does not wait
            pass
    async with second.lock(UPLOAD):
        pass
    assert held(engines[0]) == 0


async def test_a_waiting_node_gets_the_lock_when_it_is_released(engines: tuple[Engine, Engine]) -> None:
    first, second = PostgresLocker(engines[0], timeout=5), PostgresLocker(engines[1], timeout=5)
    order: list[str] = []

    async def hold() -> None:
        async with first.lock(UPLOAD):
            order.append("first in")
            await anyio.sleep(0.3)
            order.append("first out")

    async def wait() -> None:
        await anyio.sleep(0.1)
        async with second.lock(UPLOAD):
            order.append("second in")

    async with anyio.create_task_group() as group:
        group.start_soon(hold)
        group.start_soon(wait)
    assert order == ["first in", "first out", "second in"]


async def test_a_failed_request_releases_its_lock(engines: tuple[Engine, Engine]) -> None:
    locker = PostgresLocker(engines[0], timeout=0.3)
    with pytest.raises(RuntimeError):
        async with locker.lock(UPLOAD):
            raise RuntimeError("the store failed")
    assert held(engines[1]) == 0
    async with PostgresLocker(engines[1], timeout=0.3).lock(UPLOAD):
        pass
    pool = engines[0].pool
    assert isinstance(pool, QueuePool) and pool.checkedout() == 0
