"""A job's life on the local chain, driven by control methods instead of real transactions.

The jobs program model runs only the four maintenance instructions; the rest of a job's
life (``list``, ``work``, ``finish``, ``quit``, a market closing) is written here directly
into the ledger, with the account effects the program's instructions have, so a live
keeper can be tested end to end. Every write goes through the ledger, so websocket
subscribers hear of it when the slot ends, as they would of a real transaction.

- ``post_job``: a Queued JobAccount (current 240-byte layout) in ``market``, appended to
  the market's queue (queue_type becomes Job); timeout and price default to the market's.
- ``start_job``: a RunAccount {job, node, payer, time = chain now} for a Queued job with no
  run; the job leaves the queue (the tail keeps the stale key, as on chain).
- ``finish_job``: state Done, time_end = chain now, time_start and node from the run, whose
  account is closed (rent to the run's payer); with no run, time_start = now.
- ``stop_job``: the node quits: the run is closed (rent to its payer), state Stopped.
- ``close_market``: the MarketAccount is closed (rent to its authority).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from solders.pubkey import Pubkey

from keeper.errors import DecodeError
from keeper.localnet.account_store import Memcmp
from keeper.localnet.ledger import rent_exempt_minimum
from keeper.localnet.model import Account
from keeper.localnet.system_program import SYSTEM_PROGRAM
from keeper.program.layouts import (
    JOB_DISCRIMINATOR,
    MARKET_DISCRIMINATOR,
    PUBKEY_LEN,
    RUN_DISCRIMINATOR,
    JobAccount,
    MarketAccount,
    MarketOffset,
    RunAccount,
    RunOffset,
    decode_job,
    decode_market,
    decode_run,
    encode_job,
    encode_run,
)
from keeper.program.state import JobState, QueueType

if TYPE_CHECKING:
    from keeper.localnet.ledger import Ledger

_U32: Final = struct.Struct("<I")


class LifecycleError(ValueError):
    """The step does not fit the account's state (or the account is not what it says)."""


@dataclass(frozen=True, slots=True)
class Ended:
    """What a finish or a stop did: the job, the run it closed (if any), when."""

    job: Pubkey
    run: Pubkey | None
    unix_timestamp: int


class JobLifecycle:
    """The steps of a job's life for the jobs program ``program_id``, on ``ledger``."""

    def __init__(self, ledger: Ledger, program_id: Pubkey) -> None:
        self.ledger = ledger
        self.program_id = program_id
        self._serial = 0

    def _address(self, kind: str) -> Pubkey:
        """A fresh address, the same on every replay of the chain."""
        self._serial += 1
        seed = f"nosana-keeper-localnet lifecycle {kind} {self._serial}"
        return Pubkey(hashlib.sha256(seed.encode()).digest())

    # -- steps ----------------------------------------------------------------------------

    def post_job(
        self,
        *,
        market: Pubkey,
        payer: Pubkey | None = None,
        project: Pubkey | None = None,
        timeout: int | None = None,
        price: int | None = None,
    ) -> Pubkey:
        market_account = self._market(market)
        if market_account.queue_type == QueueType.NODE:
            raise LifecycleError(f"market {market} has nodes waiting: a post would start a run")
        payer = payer or self._address("payer")
        key = self._address("job")
        job = JobAccount(
            ipfs_job=hashlib.sha256(bytes(key)).digest(),
            ipfs_result=bytes(32),
            market=market,
            node=SYSTEM_PROGRAM,
            payer=payer,
            price=market_account.job_price if price is None else price,
            project=project or payer,
            state=JobState.QUEUED,
            time_end=0,
            time_start=0,
            timeout=market_account.job_timeout if timeout is None else timeout,
        )
        self._put_owned(key, encode_job(job))
        self._write_queue(market, (*(market_account.queue or ()), key), QueueType.JOB)
        return key

    def start_job(
        self, job: Pubkey, *, node: Pubkey | None = None, payer: Pubkey | None = None
    ) -> Pubkey:
        decoded = self._job(job)
        if decoded.state != JobState.QUEUED:
            raise LifecycleError(f"job {job} is not Queued (state {decoded.state})")
        if self.run_of(job) is not None:
            raise LifecycleError(f"job {job} already has a run")
        self._leave_queue(decoded.market, job)
        node = node or self._address("node")
        key = self._address("run")
        run = RunAccount(
            job=job, node=node, payer=payer or node, state=0, time=self.ledger.clock.unix_timestamp
        )
        self._put_owned(key, encode_run(run))
        return key

    def finish_job(self, job: Pubkey) -> Ended:
        decoded = self._job(job)
        now = self.ledger.clock.unix_timestamp
        run_key = self.run_of(job)
        time_start, node = now, decoded.node
        if run_key is None:
            self._leave_queue(decoded.market, job)
        else:
            run = self._close_run(run_key)
            time_start, node = run.time, run.node
        done = replace(decoded, state=JobState.DONE, time_end=now, time_start=time_start, node=node)
        self._put_owned(job, encode_job(done))
        return Ended(job, run_key, now)

    def stop_job(self, job: Pubkey) -> Ended:
        decoded = self._job(job)
        run_key = self.run_of(job)
        if run_key is None:
            raise LifecycleError(f"job {job} has no run: only a running node can quit")
        self._close_run(run_key)
        self._put_owned(job, encode_job(replace(decoded, state=JobState.STOPPED)))
        return Ended(job, run_key, self.ledger.clock.unix_timestamp)

    def close_market(self, market: Pubkey) -> None:
        decoded = self._market(market)
        account = self.ledger.get(market)
        assert account is not None  # _market checked it
        self._refund(decoded.authority, account.lamports)
        self.ledger.delete(market)

    # -- reading --------------------------------------------------------------------------

    def market_expiration(self, market: Pubkey) -> int:
        """The market's ``job_expiration`` (s): how long its Done jobs are kept."""
        return self._market(market).job_expiration

    def run_of(self, job: Pubkey) -> Pubkey | None:
        """The RunAccount whose ``job`` is ``job``, if any (the first, should there be two)."""
        selections = self.ledger.accounts.program_accounts(
            self.program_id,
            memcmps=(Memcmp(0, RUN_DISCRIMINATOR), Memcmp(RunOffset.JOB, bytes(job))),
        )
        for selection in selections:
            if len(selection):
                return Pubkey.from_string(selection.keys[0])
        return None

    def _owned(self, key: Pubkey, discriminator: bytes, kind: str) -> bytes:
        account = self.ledger.get(key)
        if account is None or account.owner != self.program_id:
            raise LifecycleError(f"no {kind} of the jobs program at {key}")
        if account.data[:8] != discriminator:
            raise LifecycleError(f"{key} is not a {kind}")
        return account.data

    def _job(self, key: Pubkey) -> JobAccount:
        data = self._owned(key, JOB_DISCRIMINATOR, "JobAccount")
        try:
            job = decode_job(data)
        except DecodeError as error:
            raise LifecycleError(f"job {key}: {error}") from error
        if job.is_legacy:
            raise LifecycleError(f"job {key} has the legacy layout: the program cannot load it")
        return job

    def _market(self, key: Pubkey) -> MarketAccount:
        data = self._owned(key, MARKET_DISCRIMINATOR, "MarketAccount")
        try:
            return decode_market(data)
        except DecodeError as error:
            raise LifecycleError(f"market {key}: {error}") from error

    # -- writing --------------------------------------------------------------------------

    def _put_owned(self, key: Pubkey, data: bytes) -> None:
        existing = self.ledger.get(key)
        lamports = rent_exempt_minimum(len(data)) if existing is None else existing.lamports
        self.ledger.put(key, Account(lamports, data, self.program_id))

    def _close_run(self, key: Pubkey) -> RunAccount:
        account = self.ledger.get(key)
        assert account is not None  # run_of found it
        run = decode_run(account.data)
        self._refund(run.payer, account.lamports)
        self.ledger.delete(key)
        return run

    def _refund(self, to: Pubkey, lamports: int) -> None:
        account = self.ledger.get(to) or Account(0, b"", SYSTEM_PROGRAM)
        self.ledger.put(to, replace(account, lamports=account.lamports + lamports))

    def _leave_queue(self, market: Pubkey, job: Pubkey) -> None:
        account = self.ledger.get(market)
        if account is None or account.owner != self.program_id:
            return  # a closed market has no queue to leave
        queue_now = self._market(market).queue or ()  # decoded whole: always read
        if job in queue_now:
            queue = tuple(key for key in queue_now if key != job)
            self._write_queue(market, queue, QueueType.JOB if queue else QueueType.EMPTY)

    def _write_queue(self, market: Pubkey, queue: tuple[Pubkey, ...], queue_type: int) -> None:
        """Rewrite the queue in place: the bytes after it stay (stale keys, as on chain)."""
        account = self.ledger.get(market)
        assert account is not None  # the caller checked it
        end = MarketOffset.QUEUE + len(queue) * PUBKEY_LEN
        if end > len(account.data):
            raise LifecycleError(f"market {market}: its queue is full")
        data = b"".join(
            (
                account.data[: MarketOffset.QUEUE_TYPE],
                bytes([queue_type]),
                _U32.pack(len(queue)),
                *(bytes(key) for key in queue),
                account.data[end:],
            )
        )
        self.ledger.put(market, replace(account, data=data))
