"""A second process for the cross-process tests: ``python -m tests.storage.pg_worker``.

``feedback URL USER FIRST COUNT``: reward recommendations FIRST..FIRST+COUNT-1 of USER
concurrently and print how many this process applied. ``simulate URL USER EPISODES``:
pretrain USER under a hold and print "held" once the hold is taken, "done" at the end.
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np

from bot.engine.learners import make_learner
from bot.service import QTuneService
from storage.postgres import PostgresStorage


async def main(argv: list[str]) -> None:
    command, url, user = argv[0], argv[1], int(argv[2])
    storage = await PostgresStorage.open(url)
    service = QTuneService(storage, learner=make_learner("seed"), rng=np.random.default_rng())
    try:
        if command == "feedback":
            first, count = int(argv[3]), int(argv[4])
            ids = range(first, first + count)
            results = await asyncio.gather(*(service.feedback(m, user, True) for m in ids))
            print(sum(r.applied for r in results), flush=True)
        elif command == "simulate":
            original = storage._acquire

            async def acquire(user_id: int, token: str) -> None:
                await original(user_id, token)
                print("held", flush=True)

            storage._acquire = acquire  # type: ignore[method-assign]
            await service.simulate(user, "pop_lover", int(argv[3]), seed=1)
            print("done", flush=True)
    finally:
        await storage.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
