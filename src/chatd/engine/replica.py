"""This replica's entry in the registry of replicas sharing the database.

While its workers run, a replica keeps a row in ``replicas`` (:mod:`chatd.store.replicas`)
saying where the others reach it: a chat's ``worker_id`` names the replica running its turn,
and :meth:`ReplicaRegistry.address_of` turns that into an address. The row is written at
start, its heartbeat touched every ``heartbeat_interval`` and removed at a clean stop; a
replica that dies leaves a row the lookups ignore once it is ``stale_after`` old, and any
replica drops such rows later (:data:`PRUNE_AFTER_STALE`).

It also holds the database's replica secret, read (or created) at start, with which the
replicas sign their calls to each other (:mod:`chatd.replica_auth`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import structlog

from chatd import replica_auth
from chatd.store import replicas
from chatd.store.db import Database

log = structlog.get_logger(__name__)

# A row whose heartbeat is this many times ``stale_after`` old is deleted: long enough that a
# replica merely cut off from the database for a while is never mistaken for a dead one (and
# if it were, its next heartbeat finds its row gone and registers again).
PRUNE_AFTER_STALE = 10
# How long a token made by :meth:`ReplicaRegistry.token` is good for.
TOKEN_LIFETIME = dt.timedelta(seconds=60)


class ReplicaRegistry:
    def __init__(
        self,
        db: Database,
        replica_id: uuid.UUID,
        address: str,
        heartbeat_interval: float,
        stale_after: float,
    ) -> None:
        self.db = db
        self.replica_id = replica_id
        self.address = address
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self._secret: bytes | None = None
        self._loop: asyncio.Task[None] | None = None

    @property
    def secret(self) -> bytes:
        """The replicas' shared secret (read at :meth:`start`)."""
        if self._secret is None:
            raise RuntimeError("the replica registry has not started")
        return self._secret

    async def start(self) -> None:
        """Register at once (raises when the database cannot be reached), then keep beating."""
        await self._register()
        self._secret = await self.db.run_write(replicas.replica_secret)
        await self._prune()
        self._loop = asyncio.create_task(self._heartbeat_loop(), name="chatd-replica-heartbeat")
        log.info("replica registered", replica_id=str(self.replica_id), address=self.address)

    async def stop(self) -> None:
        """Stop beating and remove the row (a failure is logged: the row then goes stale)."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        try:
            await self.db.run_write_one(replicas.deregister, self.replica_id)
        except Exception:
            log.exception("replica deregistration failed", replica_id=str(self.replica_id))
        else:
            log.info("replica deregistered", replica_id=str(self.replica_id))

    async def address_of(self, replica_id: uuid.UUID) -> str | None:
        """Where a replica is reached; None when it is unknown or presumed dead."""
        if replica_id == self.replica_id:
            return self.address
        return await self.db.run_read(
            replicas.address_of, replica_id, self.db.now(), self.stale_after
        )

    def token(self) -> str:
        """A token naming this replica, for a call to another (valid for TOKEN_LIFETIME)."""
        return replica_auth.sign(self.secret, self.replica_id, self.db.now() + TOKEN_LIFETIME)

    def caller(self, token: str) -> uuid.UUID | None:
        """The replica that made ``token``; None when it is not a valid replica token."""
        return replica_auth.verify(self.secret, token, self.db.now())

    # ---- the loop ----------------------------------------------------------------------------

    async def _register(self) -> None:
        await self.db.run_write_one(replicas.register, self.db.now(), self.replica_id, self.address)

    async def _prune(self) -> None:
        older_than = PRUNE_AFTER_STALE * self.stale_after
        pruned = await self.db.run_write_one(replicas.prune, self.db.now(), older_than)
        if pruned:
            log.info("pruned dead replicas", count=pruned)

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + self.stale_after
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._beat()
                if loop.time() >= next_prune:
                    next_prune = loop.time() + self.stale_after
                    await self._prune()
            except Exception:
                # The database is away, say: the next tick tries again.
                log.exception("replica heartbeat failed", replica_id=str(self.replica_id))

    async def _beat(self) -> None:
        alive = await self.db.run_write_one(replicas.heartbeat, self.db.now(), self.replica_id)
        if not alive:
            log.warning("replica row was gone; registering again", replica_id=str(self.replica_id))
            await self._register()
