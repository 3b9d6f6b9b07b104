"""Just enough of a chain behind ``FakeRpc`` to drive the sender.

Simulation looks at each Jobs-program instruction's first account: a key in ``closed``
fails with 3012 AccountNotInitialized, a key in ``failing`` with that custom code (and
its ``Error Code:`` log line). Sent transactions land after ``land_after_sends`` sends
(never, when None); ``landed_error`` makes a landed transaction carry an ``err``. The
block height rises by ``height_step`` at every getBlockHeight.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

from fake_rpc import FakeRpc
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from keeper.program.error_codes import error_names

BLOCKHASH = Hash.new_unique()
LAST_VALID = 1_000
UNITS_PER_INSTRUCTION = 5_000
UNITS_BASE = 300


@dataclass
class StubChain:
    fake: FakeRpc
    program_id: Pubkey
    closed: set[Pubkey] = field(default_factory=set)
    failing: dict[Pubkey, int] = field(default_factory=dict)
    land_after_sends: int | None = 1
    landed_error: dict[str, Any] | None = None
    landed_logs: list[str] = field(default_factory=list)
    height: int = 900
    height_step: int = 0
    sim_error: Any = None
    sends: dict[str, int] = field(default_factory=dict)
    wires: list[str] = field(default_factory=list)
    first_send: asyncio.Event = field(default_factory=asyncio.Event)

    def install(self) -> StubChain:
        self.fake.on("simulateTransaction", self.simulate)
        self.fake.on(
            "getLatestBlockhash",
            lambda params: {
                "context": {"slot": 1},
                "value": {"blockhash": str(BLOCKHASH), "lastValidBlockHeight": LAST_VALID},
            },
        )
        self.fake.on("getBlockHeight", self.block_height)
        self.fake.on("sendTransaction", self.send)
        self.fake.on("getSignatureStatuses", self.statuses)
        self.fake.on("getTransaction", self.transaction)
        return self

    def simulate(self, params: list[Any]) -> dict[str, Any]:
        transaction = VersionedTransaction.from_bytes(base64.b64decode(params[0]))
        message = transaction.message
        keys = message.account_keys
        err: Any = self.sim_error
        logs: list[str] = []
        count = 0
        for index, ix in enumerate(message.instructions):
            if keys[ix.program_id_index] != self.program_id:
                continue
            count += 1
            target = keys[ix.accounts[0]]
            code = 3012 if target in self.closed else self.failing.get(target)
            if code is not None and err is None:
                name = error_names(code)[0]
                logs.append(
                    f"Program log: AnchorError occurred. Error Code: {name}. Error Number: {code}."
                )
                err = {"InstructionError": [index, {"Custom": code}]}
        units = UNITS_BASE + UNITS_PER_INSTRUCTION * count
        return {"context": {"slot": 1}, "value": {"err": err, "logs": logs, "unitsConsumed": units}}

    def block_height(self, params: list[Any]) -> int:
        self.height += self.height_step
        return self.height

    def send(self, params: list[Any]) -> str:
        transaction = VersionedTransaction.from_bytes(base64.b64decode(params[0]))
        signature = str(transaction.signatures[0])
        self.sends[signature] = self.sends.get(signature, 0) + 1
        self.wires.append(params[0])
        self.first_send.set()
        return signature

    def landed(self, signature: str) -> bool:
        return (
            self.land_after_sends is not None
            and self.sends.get(signature, 0) >= self.land_after_sends
        )

    def transaction(self, params: list[Any]) -> dict[str, Any] | None:
        """getTransaction: what landed, as a node's history shows it (None: not found)."""
        if not self.landed(params[0]):
            return None
        meta = {"err": self.landed_error, "fee": 5_000, "logMessages": self.landed_logs}
        return {"slot": 10, "meta": meta}

    def statuses(self, params: list[Any]) -> dict[str, Any]:
        values = [
            {
                "slot": 10,
                "confirmations": 1,
                "err": self.landed_error,
                "status": {"Ok": None},
                "confirmationStatus": "confirmed",
            }
            if self.landed(signature)
            else None
            for signature in params[0]
        ]
        return {"context": {"slot": 10}, "value": values}
