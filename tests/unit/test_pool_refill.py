"""How the worker pool (app/workers/pool.py) starts workers: a session waiting for one gets its
own start at once; the spares `PREWARM_WORKERS` asks for start all together while no session
runs, and one at a time while sessions run (their imports would take the cores the running
sessions' audio needs). The pool's own logic, with each worker start held until the test lets
it finish."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from app.workers.pool import Worker, WorkerPool


class _Proc:
    pid = 0  # no /proc entry: CPU and memory read 0

    def poll(self) -> None:
        return None


class _Channel:
    def write(self, message: Any) -> None:
        pass

    def close(self) -> None:
        pass


class HeldPool(WorkerPool):
    """A pool whose worker starts wait for `finish_one()`."""

    def __init__(self, prewarm: int) -> None:
        super().__init__(
            "tests.bots.echo",
            prewarm=prewarm,
            max_sessions_per_worker=100,
            max_rss_mb=None,
            log_level="INFO",
            log_format="text",
        )
        self.gates: list[asyncio.Future[None]] = []

    async def _spawn(self) -> Worker:
        gate = asyncio.get_running_loop().create_future()
        self.gates.append(gate)
        await gate
        return Worker(cast(Any, _Proc()), cast(Any, _Channel()))

    @property
    def starting(self) -> int:
        return len(self._starting)

    async def finish_one(self) -> None:
        await asyncio.sleep(0)  # the starts begun since, up to their gate
        next(g for g in self.gates if not g.done()).set_result(None)
        for _ in range(5):  # the start's task, its done callback, a waiter's wake-up
            await asyncio.sleep(0)


def test_spares_start_together_while_idle_then_one_at_a_time_beside_sessions() -> None:
    async def scenario() -> None:
        pool = HeldPool(prewarm=3)
        pool._refill()
        assert pool.starting == 3  # no session runs: all spares at once
        for _ in range(3):
            await pool.finish_one()
        assert (pool.idle_count, pool.starting) == (3, 0)

        taken = [await pool.acquire(f"s{i}") for i in range(3)]  # three sessions take them
        assert (pool.idle_count, pool.busy_count) == (0, 3)
        assert pool.starting == 1  # three spares missing, started one at a time
        await pool.finish_one()
        assert (pool.idle_count, pool.starting) == (1, 1)
        await pool.finish_one()
        await pool.finish_one()
        assert (pool.idle_count, pool.starting) == (3, 0)

        for worker in taken:
            pool.release(worker, clean=True)
        assert (pool.idle_count, pool.busy_count, pool.starting) == (6, 0, 0)

    asyncio.run(scenario())


def test_waiting_sessions_get_their_own_starts_at_once() -> None:
    async def scenario() -> None:
        pool = HeldPool(prewarm=1)
        pool._refill()
        await pool.finish_one()
        first = await pool.acquire("s0")  # the spare; its replacement starts
        assert pool.starting == 1
        waiters = [asyncio.create_task(pool.acquire(f"s{i}")) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        # Three sessions wait: the spare's start serves one of them, and two more start at
        # once beside it; one spare is still to come, one at a time.
        assert pool.starting == 4
        for _ in range(3):
            await pool.finish_one()
        assert all(w.done() for w in waiters)
        assert (pool.busy_count, pool.idle_count, pool.starting) == (4, 0, 1)
        await pool.finish_one()
        assert (pool.idle_count, pool.starting) == (1, 0)
        pool.release(first, clean=True)
        for waiter in waiters:
            pool.release(waiter.result(), clean=True)

    asyncio.run(scenario())
