"""THE account builder of the local chain: every world and every test builds accounts here.

Accounts get their allocated sizes and rent-exempt lamports from the facts page (job 240
bytes / 2,561,280 lamports, run 120 / 1,726,080, market 10,224 / 72,049,920), keys are
deterministic (the same seed and names give the same world), and the chain clock is a
fixed date in 2026 — deliberately not "now", so nothing can pass by reading the wall clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keeper.localnet import programs
from keeper.localnet.bulk_jobs import JobColumns, encode_jobs
from keeper.localnet.metaplex import Collection, Metadata, encode_metadata
from keeper.localnet.model import Account
from keeper.localnet.spl import (
    TokenAccount,
    associated_token_address,
    encode_mint,
    encode_token_account,
)
from keeper.program.ids import (
    DEVNET,
    METAPLEX_METADATA_PROGRAM,
    STAKING_PROGRAM,
    SYSTEM_PROGRAM,
    TOKEN_PROGRAM,
)
from keeper.program.layouts import (
    JOB_ALLOCATED_SIZE,
    LEGACY_MARKET_ALLOCATED_SIZE,
    MARKET_ALLOCATED_SIZE,
    JobAccount,
    MarketAccount,
    RunAccount,
    StakeAccount,
    encode_job,
    encode_market,
    encode_run,
    encode_stake,
)
from keeper.program.pda import nft_metadata, node_stake
from keeper.program.state import QueueType

if TYPE_CHECKING:
    from collections.abc import Sequence

# 2026-03-02 09:00:00 UTC: the chain clock of every world unless told otherwise.
DEFAULT_CHAIN_TIME: Final = 1_772_442_000
LAMPORTS_PER_SOL: Final = 1_000_000_000
DEFAULT_WALLET_LAMPORTS: Final = 10 * LAMPORTS_PER_SOL
KEEPER: Final = "keeper"
_ONE_YEAR: Final = 365 * 86_400


def minimum_balance(data_len: int) -> int:
    """Rent-exempt lamports at the default rates: (128 + len) bytes x 3,480 lamports x 2 years."""
    return (128 + data_len) * 3_480 * 2


@dataclass(frozen=True, slots=True)
class NftAccounts:
    token_account: Pubkey
    mint: Pubkey
    metadata: Pubkey


@dataclass
class World:
    """A seeded chain state: accounts, the keypairs that own them, and what the keeper should do.

    ``labels`` names interesting addresses; ``expectations`` says, per label, the keeper's
    expected outcome ("<instruction>:<reason>" or "leave:<reason>", reasons as in
    ``keeper.tasks.plan.Reason``); ``counts`` describes bulk content no label names.
    """

    name: str
    accounts: dict[Pubkey, Account]
    keypairs: dict[str, Keypair]
    labels: dict[str, Pubkey]
    program_id: Pubkey
    market_admin: Pubkey
    nos_mint: Pubkey
    unix_timestamp: int
    expectations: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def keeper(self) -> Keypair:
        return self.keypairs[KEEPER]


class WorldBuilder:
    """Builds a ``World``; each method adds accounts and returns the address that matters."""

    def __init__(
        self,
        *,
        name: str = "custom",
        program_id: Pubkey = DEVNET.jobs_program,
        market_admin: Pubkey | None = None,
        nos_mint: Pubkey = DEVNET.nos_mint,
        unix_timestamp: int = DEFAULT_CHAIN_TIME,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.program_id = program_id
        self.nos_mint = nos_mint
        self.now = unix_timestamp
        self.seed = seed
        self.accounts: dict[Pubkey, Account] = programs.program_accounts(program_id)
        self.keypairs: dict[str, Keypair] = {}
        self.labels: dict[str, Pubkey] = {}
        self.expectations: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self._serial = 0
        keeper = self.wallet(KEEPER, lamports=100 * LAMPORTS_PER_SOL)
        self.market_admin = market_admin or keeper

    # --- keys ------------------------------------------------------------------------------

    def _digest(self, *parts: str) -> bytes:
        return hashlib.sha256(
            "/".join(("nosana-keeper-localnet", str(self.seed), *parts)).encode()
        ).digest()

    def keypair(self, name: str) -> Keypair:
        """The keypair called ``name``: the same for the same seed and name."""
        if name not in self.keypairs:
            self.keypairs[name] = Keypair.from_seed(self._digest("keypair", name))
        return self.keypairs[name]

    def address(self, label: str | None = None) -> Pubkey:
        """A fresh address nobody holds the key of (derived from ``label`` when given)."""
        if label is None:
            self._serial += 1
            return Pubkey.from_bytes(self._digest("address", "#", str(self._serial)))
        return Pubkey.from_bytes(self._digest("address", label))

    def label(self, label: str | None, address: Pubkey, expect: str | None = None) -> Pubkey:
        """Name ``address`` (labels are unique) and, optionally, the keeper's expected outcome."""
        if label is not None:
            if label in self.labels and self.labels[label] != address:
                raise ValueError(f"label {label!r} is already used")
            self.labels[label] = address
            if expect is not None:
                self.expectations[label] = expect
        elif expect is not None:
            raise ValueError("an expectation needs a label")
        return address

    def _put(self, address: Pubkey, account: Account) -> Pubkey:
        if address in self.accounts:
            raise ValueError(f"{address} already holds an account")
        self.accounts[address] = account
        return address

    def _owned(self, data: bytes, owner: Pubkey | None = None) -> Account:
        return Account(minimum_balance(len(data)), data, owner or self.program_id)

    # --- accounts --------------------------------------------------------------------------

    def wallet(self, name_or_key: str | Pubkey, lamports: int = DEFAULT_WALLET_LAMPORTS) -> Pubkey:
        """A system account: a named keypair's (labelled with its name) or any key's."""
        if isinstance(name_or_key, str):
            key = self.label(name_or_key, self.keypair(name_or_key).pubkey())
        else:
            key = name_or_key
        return self._put(key, Account(lamports, b"", SYSTEM_PROGRAM))

    def market(
        self,
        *,
        job_expiration: int = 86_400,
        job_timeout: int = 3_600,
        node_xnos_minimum: int = 0,
        node_access_key: Pubkey = SYSTEM_PROGRAM,
        queue: Sequence[Pubkey] = (),
        queue_type: int | None = None,
        job_type: int = 0,
        job_price: int = 100,
        authority: Pubkey | None = None,
        legacy_size: bool = False,
        stale_tail: Sequence[Pubkey] = (),
        label: str | None = None,
        address: Pubkey | None = None,
    ) -> Pubkey:
        """A MarketAccount (10,224 bytes, or 3,376 for a market opened before April 2024).

        ``queue_type`` defaults to Job when ``queue`` has entries, else Empty (255);
        ``stale_tail`` writes keys after the queue, as a shrunk queue leaves them.
        """
        key = address or self.address(label)
        vault, vault_bump = Pubkey.find_program_address(
            [bytes(key), bytes(self.nos_mint)], self.program_id
        )
        if queue_type is None:
            queue_type = QueueType.JOB if queue else QueueType.EMPTY
        market = MarketAccount(
            authority=authority or self.keypair("market_authority").pubkey(),
            job_expiration=job_expiration,
            job_price=job_price,
            job_timeout=job_timeout,
            job_type=job_type,
            vault=vault,
            vault_bump=vault_bump,
            node_access_key=node_access_key,
            node_xnos_minimum=node_xnos_minimum,
            queue_type=queue_type,
            queue=tuple(queue),
        )
        size = LEGACY_MARKET_ALLOCATED_SIZE if legacy_size else MARKET_ALLOCATED_SIZE
        data = encode_market(market, size=size, stale_tail=tuple(stale_tail))
        return self.label(label, self._put(key, self._owned(data)))

    def job(
        self,
        *,
        market: Pubkey,
        state: int,
        payer: Pubkey | None = None,
        time_end: int = 0,
        timeout: int | None = 3_600,
        legacy: bool = False,
        node: Pubkey | None = None,
        project: Pubkey | None = None,
        price: int = 100,
        time_start: int = 0,
        ipfs_job: bytes = bytes(32),
        ipfs_result: bytes = bytes(32),
        label: str | None = None,
        expect: str | None = None,
        address: Pubkey | None = None,
    ) -> Pubkey:
        """A JobAccount (240 bytes; ``legacy``: the 232-byte layout without ``timeout``).

        ``payer`` defaults to the "payer" wallet (created on first use).
        """
        key = address or self.address(label)
        job = JobAccount(
            ipfs_job=ipfs_job,
            ipfs_result=ipfs_result,
            market=market,
            node=node or SYSTEM_PROGRAM,
            payer=payer or self._default_wallet("payer"),
            price=price,
            project=project or self.keypair("project").pubkey(),
            state=state,
            time_end=time_end,
            time_start=time_start,
            timeout=None if legacy else timeout,
        )
        if not legacy and timeout is None:
            raise ValueError("a current-layout job has a timeout; pass legacy=True for none")
        return self.label(label, self._put(key, self._owned(encode_job(job))), expect)

    def run(
        self,
        *,
        job: Pubkey,
        time: int,
        node: Pubkey | None = None,
        payer: Pubkey | None = None,
        label: str | None = None,
        expect: str | None = None,
        address: Pubkey | None = None,
    ) -> Pubkey:
        """A RunAccount (120 bytes) of ``job`` started at ``time``; payer defaults to the node."""
        key = address or self.address(label)
        node = node or self.keypair("node").pubkey()
        run = RunAccount(job=job, node=node, payer=payer or node, state=0, time=time)
        return self.label(label, self._put(key, self._owned(encode_run(run))), expect)

    def stake(
        self,
        *,
        authority: Pubkey,
        xnos: int,
        amount: int | None = None,
        duration: int = _ONE_YEAR,
        time_unstake: int = 0,
        label: str | None = None,
        address: Pubkey | None = None,
    ) -> Pubkey:
        """A StakeAccount (staking program) at ``authority``'s stake PDA, unless ``address``."""
        key = address or node_stake(authority, self.nos_mint)
        vault, vault_bump = Pubkey.find_program_address(
            [b"vault", bytes(self.nos_mint), bytes(authority)], STAKING_PROGRAM
        )
        stake = StakeAccount(
            amount=xnos if amount is None else amount,
            authority=authority,
            duration=duration,
            time_unstake=time_unstake,
            vault=vault,
            vault_bump=vault_bump,
            xnos=xnos,
        )
        return self.label(label, self._put(key, self._owned(encode_stake(stake), STAKING_PROGRAM)))

    def nft(
        self,
        *,
        owner: Pubkey,
        amount: int = 1,
        collection: Pubkey | None = None,
        verified: bool = True,
        label: str | None = None,
    ) -> NftAccounts:
        """An NFT: its mint, ``owner``'s token account and the Metaplex metadata at its PDA.

        ``collection`` None writes metadata without a collection. Labels: ``label``,
        ``label + "_mint"``, ``label + "_metadata"``.
        """
        mint = self.address(None if label is None else f"{label}_mint")
        mint_data = encode_mint(mint_authority=None, supply=1)
        self._put(mint, self._owned(mint_data, TOKEN_PROGRAM))
        token_account = associated_token_address(owner, mint, TOKEN_PROGRAM)
        token_data = encode_token_account(TokenAccount(mint=mint, owner=owner, amount=amount))
        self._put(token_account, self._owned(token_data, TOKEN_PROGRAM))
        metadata = nft_metadata(mint)
        meta = Metadata(
            update_authority=self.keypair("collection_authority").pubkey(),
            mint=mint,
            name="Nosana Node",
            symbol="NOS",
            uri="https://nosana.io/node.json",
            token_standard=0,
            collection=None if collection is None else Collection(verified, collection),
        )
        self._put(metadata, self._owned(encode_metadata(meta), METAPLEX_METADATA_PROGRAM))
        if label is not None:
            self.label(label, token_account)
            self.label(f"{label}_mint", mint)
            self.label(f"{label}_metadata", metadata)
        return NftAccounts(token_account=token_account, mint=mint, metadata=metadata)

    def raw(
        self, address: Pubkey, account: Account, label: str | None = None, expect: str | None = None
    ) -> Pubkey:
        """Any account as given: malformed, legacy, foreign-owned, ..."""
        return self.label(label, self._put(address, account), expect)

    def jobs_bulk(self, keys: bytes, columns: JobColumns) -> None:
        """Many current-layout jobs at once: ``keys`` concatenated, fields as columns."""
        count = len(keys) // 32
        rows = encode_jobs(count, columns)
        lamports, owner = minimum_balance(JOB_ALLOCATED_SIZE), self.program_id
        accounts, size, before = self.accounts, JOB_ALLOCATED_SIZE, len(self.accounts)
        for index in range(count):
            start = index * size
            key = Pubkey.from_bytes(keys[index * 32 : index * 32 + 32])
            accounts[key] = Account(lamports, rows[start : start + size], owner)
        if len(accounts) != before + count:
            raise ValueError("jobs_bulk: a key collided with an existing account")

    def _default_wallet(self, name: str) -> Pubkey:
        key = self.keypair(name).pubkey()
        if key not in self.accounts:
            self.wallet(name)
        return key

    def build(self) -> World:
        return World(
            name=self.name,
            accounts=self.accounts,
            keypairs=dict(self.keypairs),
            labels=dict(self.labels),
            program_id=self.program_id,
            market_admin=self.market_admin,
            nos_mint=self.nos_mint,
            unix_timestamp=self.now,
            expectations=dict(self.expectations),
            counts=dict(self.counts),
        )
