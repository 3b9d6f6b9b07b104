"""A toy program, a toy world and a transaction kit for testing the local chain's runtime,
server and faults without depending on the jobs program."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from keeper.localnet.compute_budget import COMPUTE_BUDGET_PROGRAM
from keeper.localnet.ledger import rent_exempt_minimum
from keeper.localnet.model import Account, InstructionContext, ProgramFailure
from keeper.localnet.system_program import SYSTEM_PROGRAM

TOY_PROGRAM_ID = Pubkey(hashlib.sha256(b"localnet toy program").digest())
GENESIS_TIME = 1_750_000_000
PAYER_LAMPORTS = 10_000_000_000
TOY_UNITS = 500  # what every toy instruction reports, before burns

# Toy instruction tags (first data byte).
WRITE, FAIL, BURN, CLOSE, NOOP = range(5)


class ToyProgram:
    """WRITE bytes -> accounts[0].data; FAIL u32 -> Custom(code); BURN u32 -> extra units;
    CLOSE -> accounts[0]'s lamports to accounts[1], account closed; NOOP accepts anything.
    A missing accounts[0] fails with Anchor's AccountNotInitialized (3012)."""

    program_id = TOY_PROGRAM_ID

    def execute(self, ctx: InstructionContext) -> None:
        ctx.compute_units += TOY_UNITS
        tag, args = ctx.data[0], ctx.data[1:]
        if tag == NOOP:
            return
        if tag == FAIL:
            code = struct.unpack("<I", args)[0]
            raise ProgramFailure("ToyFailure", custom=code)
        if tag == BURN:
            ctx.compute_units += struct.unpack("<I", args)[0]
            return
        target = ctx.accounts[0]
        if target.account is None:
            raise ProgramFailure("AccountNotInitialized", custom=3012)
        if tag == WRITE:
            target.account.data = bytes(args)
        elif tag == CLOSE:
            destination = ctx.accounts[1].account
            assert destination is not None
            destination.lamports += target.account.lamports
            target.account.lamports = 0
            target.account.data = b""


@dataclass
class ToyWorld:
    name: str
    accounts: dict[Pubkey, Account]
    keypairs: dict[str, Keypair]
    labels: dict[str, Pubkey]
    program_id: Pubkey = TOY_PROGRAM_ID
    market_admin: Pubkey = field(default_factory=Pubkey.default)
    nos_mint: Pubkey = field(default_factory=Pubkey.default)
    unix_timestamp: int = GENESIS_TIME


def build_toy_world() -> ToyWorld:
    keeper = Keypair.from_seed(hashlib.sha256(b"toy keeper").digest())
    cosigner = Keypair.from_seed(hashlib.sha256(b"toy cosigner").digest())
    data_a = Pubkey(hashlib.sha256(b"toy data a").digest())
    data_b = Pubkey(hashlib.sha256(b"toy data b").digest())
    wallet = Pubkey(hashlib.sha256(b"toy wallet").digest())
    rent = rent_exempt_minimum(8)
    return ToyWorld(
        name="toy",
        accounts={
            keeper.pubkey(): Account(PAYER_LAMPORTS, b"", SYSTEM_PROGRAM),
            cosigner.pubkey(): Account(PAYER_LAMPORTS, b"", SYSTEM_PROGRAM),
            data_a: Account(rent, bytes(8), TOY_PROGRAM_ID),
            data_b: Account(rent, b"\x01" * 8, TOY_PROGRAM_ID),
            wallet: Account(1_000_000_000, b"", SYSTEM_PROGRAM),
        },
        keypairs={"keeper": keeper, "cosigner": cosigner},
        labels={"data_a": data_a, "data_b": data_b, "wallet": wallet},
    )


@dataclass
class Kit:
    """Builds toy instructions and signed transactions against one chain's ledger."""

    world: ToyWorld
    chain_node: object  # keeper.localnet.node.Node

    @property
    def node(self):  # typed loosely: tests use the Node's public API
        return self.chain_node

    @property
    def payer(self) -> Keypair:
        return self.world.keypairs["keeper"]

    @property
    def cosigner(self) -> Keypair:
        return self.world.keypairs["cosigner"]

    def label(self, name: str) -> Pubkey:
        return self.world.labels[name]

    def blockhash(self) -> Hash:
        return self.node.ledger.clock.latest_blockhash.blockhash

    def account(self, key: Pubkey) -> Account | None:
        return self.node.ledger.get(key)

    def balance(self, key: Pubkey) -> int:
        return self.node.ledger.balance(key)

    def toy(self, tag: int, args: bytes = b"", *metas: AccountMeta) -> Instruction:
        return Instruction(TOY_PROGRAM_ID, bytes([tag]) + args, list(metas))

    def write(self, key: Pubkey, data: bytes, *, writable: bool = True) -> Instruction:
        return self.toy(WRITE, data, AccountMeta(key, is_signer=False, is_writable=writable))

    def fail(self, code: int) -> Instruction:
        return self.toy(FAIL, struct.pack("<I", code))

    def burn(self, units: int) -> Instruction:
        return self.toy(BURN, struct.pack("<I", units))

    def close(self, key: Pubkey, destination: Pubkey) -> Instruction:
        return self.toy(
            CLOSE,
            b"",
            AccountMeta(key, is_signer=False, is_writable=True),
            AccountMeta(destination, is_signer=False, is_writable=True),
        )

    def noop(self, padding: bytes = b"") -> Instruction:
        return self.toy(NOOP, padding)

    def transfer(self, destination: Pubkey, lamports: int) -> Instruction:
        return transfer(
            TransferParams(
                from_pubkey=self.payer.pubkey(), to_pubkey=destination, lamports=lamports
            )
        )

    @staticmethod
    def cu_limit(units: int) -> Instruction:
        return Instruction(COMPUTE_BUDGET_PROGRAM, bytes([2]) + struct.pack("<I", units), [])

    @staticmethod
    def cu_price(micro_lamports: int) -> Instruction:
        return Instruction(
            COMPUTE_BUDGET_PROGRAM, bytes([3]) + struct.pack("<Q", micro_lamports), []
        )

    def tx(
        self,
        *ixs: Instruction,
        signers: list[Keypair] | None = None,
        blockhash: Hash | None = None,
        legacy: bool = False,
        payer: Keypair | None = None,
    ) -> VersionedTransaction:
        payer = payer or self.payer
        signers = signers or [payer]
        recent = blockhash or self.blockhash()
        if legacy:
            message = Message.new_with_blockhash(list(ixs), payer.pubkey(), recent)
            return VersionedTransaction(message, signers)
        message_v0 = MessageV0.try_compile(payer.pubkey(), list(ixs), [], recent)
        return VersionedTransaction(message_v0, signers)
