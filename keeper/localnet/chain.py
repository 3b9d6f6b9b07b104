"""``LocalChain``: a seeded local Solana chain served over JSON-RPC on loopback.

In tests::

    async with LocalChain.start("demo", slot_ms=400) as chain:
        client = AsyncClient(chain.url)
        chain.advance_slots(10)

or, for a keeper run as a subprocess, ``with LocalChain.run_in_thread("demo") as chain:``.
Operators run ``nosana-keeper localnet --world demo --port 8899`` (``main_localnet``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import threading
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from solders.hash import Hash

from keeper.localnet.clock import ChainClock
from keeper.localnet.faults import FaultConfig, Faults
from keeper.localnet.ledger import Ledger, TransactionRecord
from keeper.localnet.node import Node
from keeper.localnet.runtime import Runtime
from keeper.localnet.server import RpcServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping

    from solders.keypair import Keypair
    from solders.pubkey import Pubkey

    from keeper.localnet.model import Account, Program

_T = TypeVar("_T")
_LOG: Final = logging.getLogger(__name__)
_CONTROL_TIMEOUT_SECONDS: Final = 60.0


class GenesisWorld(Protocol):
    """What the chain needs from a world (``keeper.localnet.worlds.World`` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def accounts(self) -> Mapping[Pubkey, Account]: ...
    @property
    def keypairs(self) -> Mapping[str, Keypair]: ...
    @property
    def labels(self) -> Mapping[str, Pubkey]: ...
    @property
    def program_id(self) -> Pubkey: ...
    @property
    def market_admin(self) -> Pubkey: ...
    @property
    def nos_mint(self) -> Pubkey: ...
    @property
    def unix_timestamp(self) -> int: ...


def genesis_hash(world_name: str) -> Hash:
    return Hash(hashlib.sha256(f"nosana-keeper localnet {world_name}".encode()).digest())


def load_world(world: GenesisWorld | str, **world_params: object) -> GenesisWorld:
    if not isinstance(world, str):
        return world
    from keeper.localnet.worlds import load_world as load_named  # noqa: PLC0415 - optional part

    loaded: GenesisWorld = load_named(world, **world_params)
    return loaded


def default_programs(world: GenesisWorld) -> list[Program]:
    """The Nosana Jobs program model, configured for ``world``."""
    from keeper.localnet.jobs_program import JobsProgram  # noqa: PLC0415 - optional part

    return [
        JobsProgram(
            program_id=world.program_id, market_admin=world.market_admin, nos_mint=world.nos_mint
        )
    ]


class LocalChain:
    """A running local chain: its URL, world, ledger, faults and controls.

    The control methods may be called from any thread: they run on the chain's loop.
    """

    def __init__(self, world: GenesisWorld, node: Node, server: RpcServer, *, slot_ms: int) -> None:
        self.world = world
        self.node = node
        self.ledger = node.ledger
        self.runtime = node.runtime
        self.faults = node.faults
        self.slot_ms = slot_ms
        self._server = server
        self._loop = asyncio.get_running_loop()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def ws_url(self) -> str:
        """The websocket endpoint: ``ws://host:port/``, the RPC URL's host and port."""
        return self._server.ws_url

    @classmethod
    def build_node(
        cls,
        world: GenesisWorld,
        *,
        slot_ms: int = 400,
        faults: FaultConfig | None = None,
        programs: Iterable[Program] | None = None,
        prioritization_fees: list[int] | None = None,
    ) -> Node:
        """The chain's state and transaction handling, without a server."""
        clock = ChainClock(
            genesis_hash=genesis_hash(world.name),
            unix_timestamp=world.unix_timestamp,
            slot_ms=slot_ms,
        )
        ledger = Ledger(clock)
        ledger.load(world.accounts)
        runtime = Runtime(ledger, default_programs(world) if programs is None else programs)
        return Node(
            ledger,
            runtime,
            Faults(faults, clock),
            competitor_program=world.program_id,
            prioritization_fees=prioritization_fees,
            jobs_program=world.program_id,
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        world: GenesisWorld | str = "demo",
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        slot_ms: int = 400,
        auto_advance: bool = True,
        faults: FaultConfig | None = None,
        programs: Iterable[Program] | None = None,
        prioritization_fees: list[int] | None = None,
        **world_params: object,
    ) -> AsyncIterator[LocalChain]:
        """Serve ``world`` until the block exits.

        ``auto_advance=False`` stops the slot ticker: slots (and the clock) then move only
        through ``advance_slots``, which makes tests exact.
        """
        loaded = await asyncio.to_thread(load_world, world, **world_params)
        node = await asyncio.to_thread(
            cls.build_node,
            loaded,
            slot_ms=slot_ms,
            faults=faults,
            programs=programs,
            prioritization_fees=prioritization_fees,
        )
        server = RpcServer(node)
        await server.start(host, port)
        chain = cls(loaded, node, server, slot_ms=slot_ms)
        ticker = asyncio.create_task(chain._tick()) if auto_advance else None
        try:
            yield chain
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            await server.stop()

    @classmethod
    @contextlib.contextmanager
    def run_in_thread(
        cls, world: GenesisWorld | str = "demo", **options: object
    ) -> Iterator[LocalChain]:
        """``start`` on a loop in a background thread, for synchronous callers."""
        started: concurrent.futures.Future[
            tuple[LocalChain, asyncio.AbstractEventLoop, asyncio.Event]
        ] = concurrent.futures.Future()

        async def serve() -> None:
            try:
                async with cls.start(world, **options) as chain:  # type: ignore[arg-type]
                    stop = asyncio.Event()
                    started.set_result((chain, asyncio.get_running_loop(), stop))
                    await stop.wait()
            except Exception as error:  # noqa: BLE001 - handed to the caller, or logged
                if started.done():
                    _LOG.exception("localnet: the chain thread failed")
                else:
                    started.set_exception(error)

        thread = threading.Thread(target=asyncio.run, args=(serve(),), name="localnet")
        thread.start()
        try:
            chain, loop, stop = started.result()
        except BaseException:
            thread.join()
            raise
        try:
            yield chain
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.slot_ms / 1000)
            self.ledger.clock.advance(1)

    def _on_loop(self, action: Callable[[], _T]) -> _T:
        """Run ``action`` on the chain's loop (directly when already there)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            return action()
        done: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(action())
            except Exception as error:  # noqa: BLE001 - re-raised in the calling thread
                done.set_exception(error)

        self._loop.call_soon_threadsafe(run)
        return done.result(timeout=_CONTROL_TIMEOUT_SECONDS)

    # -- controls -------------------------------------------------------------------------

    def set_clock(self, unix_timestamp: int) -> int:
        clock = self.ledger.clock
        self._on_loop(lambda: clock.set_unix_timestamp(unix_timestamp))
        return unix_timestamp

    def skew_clock(self, seconds: int) -> int:
        return self._on_loop(lambda: self.ledger.clock.skew(seconds))

    def advance_slots(self, slots: int = 1) -> int:
        return self._on_loop(lambda: self.ledger.clock.advance(slots))

    def set_faults(self, **switches: int) -> FaultConfig:
        return self._on_loop(lambda: self.faults.set(**switches))

    def clear_faults(self) -> None:
        self._on_loop(self.faults.clear)

    def set_prioritization_fees(self, fees: list[int]) -> None:
        def assign() -> None:
            self.node.prioritization_fees = list(fees)

        self._on_loop(assign)

    def landing(self) -> int:
        """Transactions accepted under ``land_delay_ms`` that have not landed yet."""
        return self._on_loop(lambda: len(self.node.landing))

    def get_account(self, key: Pubkey) -> Account | None:
        return self._on_loop(lambda: self.ledger.get(key))

    def transactions(self) -> list[TransactionRecord]:
        """The chain's transaction log: every landed transaction, in order."""
        return self._on_loop(self.ledger.records)

    def close_account(self, key: Pubkey) -> bool:
        """Remove an account, as its owner closing it would (a market closed by its admin)."""
        return self._on_loop(lambda: self.ledger.delete(key))

    @property
    def unix_timestamp(self) -> int:
        return self._on_loop(lambda: self.ledger.clock.unix_timestamp)

    @property
    def slot(self) -> int:
        return self._on_loop(lambda: self.ledger.clock.slot)
