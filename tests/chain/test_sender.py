"""The sender: allow-list first, drop-and-resimulate, fee caps, re-send, expiry, shutdown."""

from __future__ import annotations

import asyncio
import base64

import pytest
from fake_rpc import FakeRpc, RpcFailure, RpcFailureError
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from stub_chain import LAST_VALID, UNITS_BASE, UNITS_PER_INSTRUCTION, StubChain

from keeper.chain.outcome import BatchResult, Fault, FeeDecision, SendOutcome
from keeper.chain.rpc import RpcClient
from keeper.chain.sender import Sender
from keeper.chain.transaction import TxVersion
from keeper.errors import SafetyViolation, TransactionError
from keeper.program.instructions import (
    CleanAdminAccounts,
    clean_admin,
    compute_unit_price,
)

PROGRAM = Pubkey.from_string("nosJTmGQxvwXy23vng5UjkTbfv91Bzf9jEuro78dAGR")
ADMIN = Keypair.from_seed(bytes([7] * 32))
MAX_FEE = 1_000_000


def job(n: int) -> Pubkey:
    return Pubkey.from_bytes(n.to_bytes(32, "big"))


def cleanup(n: int, payer: Pubkey | None = None) -> Instruction:
    accounts = CleanAdminAccounts(
        job=job(n), payer=payer or job(1000 + n), authority=ADMIN.pubkey()
    )
    return clean_admin(accounts, program_id=PROGRAM)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[bool] = []
        self.done: list[BatchResult] = []

    def transaction_sent(self, *, resend: bool) -> None:
        self.sent.append(resend)

    def batch_done(self, result: BatchResult) -> None:
        self.done.append(result)


@pytest.fixture
def chain(fake: FakeRpc) -> StubChain:
    return StubChain(fake, PROGRAM).install()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def sender(rpc: RpcClient, recorder: Recorder) -> Sender:
    return Sender(
        rpc,
        fee_payer=ADMIN,
        program_id=PROGRAM,
        observer=recorder,
        resend_interval_s=0.0,
        confirm_poll_s=0.001,
    )


async def run(sender: Sender, batch: list[Instruction], **kwargs: object) -> BatchResult:
    options: dict[str, object] = {
        "unit_price": 1_000,
        "unit_limit_margin": 1.2,
        "max_fee_lamports": MAX_FEE,
    }
    options.update(kwargs)
    return await sender.execute(batch, **options)  # type: ignore[arg-type]


def sent_transaction(chain: StubChain) -> VersionedTransaction:
    return VersionedTransaction.from_bytes(base64.b64decode(chain.wires[-1]))


@pytest.mark.parametrize("version", ["v0", "legacy"])
async def test_a_clean_batch_lands(
    fake: FakeRpc, chain: StubChain, rpc: RpcClient, recorder: Recorder, version: TxVersion
) -> None:
    sender = Sender(
        rpc,
        fee_payer=ADMIN,
        program_id=PROGRAM,
        observer=recorder,
        confirm_poll_s=0.001,
        version=version,
    )
    result = await run(sender, [cleanup(1), cleanup(2), cleanup(3)])
    assert result.outcome is SendOutcome.CONFIRMED
    assert result.kept == (0, 1, 2)
    assert result.dropped == {}
    units = UNITS_BASE + 3 * UNITS_PER_INSTRUCTION
    assert result.units == units
    assert result.unit_limit == int(units * 1.2)
    assert result.fee_lamports == 5_000 + -(-1_000 * result.unit_limit // 1_000_000)
    assert result.fee_paid_lamports == result.fee_lamports
    assert result.fee_decision is FeeDecision.AS_ASKED
    assert result.confirmation_seconds is not None
    transaction = sent_transaction(chain)
    assert transaction.signatures[0] == result.signature
    assert transaction.verify_with_results() == [True]
    [send] = fake.params("sendTransaction")
    assert send[1]["skipPreflight"] is True
    assert send[1]["maxRetries"] == 0
    [simulation] = fake.params("simulateTransaction")
    assert simulation[1]["sigVerify"] is False
    assert simulation[1]["replaceRecentBlockhash"] is True
    assert recorder.done == [result]


async def test_a_failing_instruction_is_dropped_and_the_rest_resimulated(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    chain.closed.add(job(2))
    chain.failing[job(4)] = 6005
    result = await run(sender, [cleanup(1), cleanup(2), cleanup(3), cleanup(4)])
    assert result.outcome is SendOutcome.CONFIRMED
    assert result.kept == (0, 2)
    assert result.dropped == {
        1: Fault(index=1, code=3012, names=("AccountNotInitialized",)),
        3: Fault(index=3, code=6005, names=("JobNotExpired",)),
    }
    assert result.already_closed == (1,)
    assert result.simulations == 3
    sent = sent_transaction(chain).message
    targets = [sent.account_keys[ix.accounts[0]] for ix in sent.instructions[2:]]
    assert targets == [job(1), job(3)]
    assert result.units == UNITS_BASE + 2 * UNITS_PER_INSTRUCTION


async def test_nothing_is_sent_when_every_instruction_drops(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    chain.closed.update({job(1), job(2)})
    result = await run(sender, [cleanup(1), cleanup(2)])
    assert result.outcome is SendOutcome.ALL_DROPPED
    assert set(result.dropped) == {0, 1}
    assert result.simulations == 2
    assert fake.count("sendTransaction") == 0
    assert fake.count("getLatestBlockhash") == 0
    assert result.fee_paid_lamports == 0


async def test_a_transaction_level_simulation_error_rejects_the_batch(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    chain.sim_error = "InsufficientFundsForFee"
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.REJECTED
    assert result.error is not None
    assert "InsufficientFundsForFee" in result.error
    assert fake.count("sendTransaction") == 0


async def test_the_same_bytes_are_resent_until_confirmed(
    fake: FakeRpc, chain: StubChain, sender: Sender, recorder: Recorder
) -> None:
    chain.land_after_sends = 4
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.CONFIRMED
    assert fake.count("sendTransaction") == 4
    assert len(set(chain.wires)) == 1  # never re-signed
    assert result.resends == 3
    assert recorder.sent == [False, True, True, True]


async def test_a_transaction_that_never_lands_expires(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    chain.land_after_sends = None
    chain.height = LAST_VALID - 3
    chain.height_step = 1
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.EXPIRED
    assert chain.height > LAST_VALID
    assert fake.count("sendTransaction") >= 2
    assert len(set(chain.wires)) == 1
    assert result.fee_paid_lamports == 0


async def test_already_processed_is_success(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    fake.queue(
        "sendTransaction",
        RpcFailure(
            -32002,
            "Transaction simulation failed: This transaction has already been processed",
            data={"err": "AlreadyProcessed", "logs": []},
        ),
    )
    chain.land_after_sends = 0  # it landed before we asked
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.CONFIRMED


async def test_a_first_send_the_node_refuses_is_rejected(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    fake.queue("sendTransaction", RpcFailure(-32602, "invalid transaction: too many account locks"))
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.REJECTED
    assert result.error is not None
    assert "account locks" in result.error


async def test_a_landed_error_is_failed_with_the_batch_index_and_name(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    chain.closed.add(job(1))
    # the transaction holds batch items 1 and 2; its instruction 3 is batch item 2
    chain.landed_error = {"InstructionError": [3, {"Custom": 6000}]}
    chain.landed_logs = [
        "Program log: AnchorError occurred. Error Code: Unauthorized. Error Number: 6000."
    ]
    result = await run(sender, [cleanup(1), cleanup(2), cleanup(3)])
    assert result.outcome is SendOutcome.FAILED
    assert result.failure == Fault(index=2, code=6000, names=("Unauthorized",))
    assert result.fee_paid_lamports == result.fee_lamports > 0


async def test_the_price_is_lowered_to_fit_the_fee_cap(chain: StubChain, sender: Sender) -> None:
    result = await run(sender, [cleanup(1)], unit_price=10_000_000, max_fee_lamports=20_000)
    assert result.outcome is SendOutcome.CONFIRMED
    assert result.fee_decision is FeeDecision.PRICE_LOWERED
    assert result.fee_lamports <= 20_000
    assert result.unit_price < 10_000_000
    price_ix = sent_transaction(chain).message.instructions[1]
    assert bytes(price_ix.data) == bytes(compute_unit_price(result.unit_price).data)


async def test_a_cap_below_the_base_fee_refuses(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    result = await run(sender, [cleanup(1)], max_fee_lamports=4_999)
    assert result.outcome is SendOutcome.REFUSED
    assert result.fee_decision is FeeDecision.REFUSED
    assert fake.count("sendTransaction") == 0


@pytest.mark.parametrize(
    "intruder",
    [
        transfer(TransferParams(from_pubkey=ADMIN.pubkey(), to_pubkey=job(9), lamports=1)),
        Instruction(
            PROGRAM, bytes(8), [AccountMeta(job(9), False, True)] * 3
        ),  # unknown discriminator
        clean_admin(CleanAdminAccounts(job(9), job(10), ADMIN.pubkey())),  # another program id
        compute_unit_price(5),  # the sender alone sets the budget
    ],
)
async def test_a_disallowed_instruction_stops_everything(
    fake: FakeRpc, chain: StubChain, sender: Sender, intruder: Instruction
) -> None:
    with pytest.raises(SafetyViolation, match="nothing was signed"):
        await run(sender, [cleanup(1), intruder])
    assert fake.calls == []  # not even a simulation


async def test_a_signer_the_keeper_does_not_hold_stops_everything(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    stranger = Keypair()
    ix = clean_admin(CleanAdminAccounts(job(1), job(2), stranger.pubkey()), program_id=PROGRAM)
    with pytest.raises(SafetyViolation, match="does not hold"):
        await run(sender, [ix])
    assert fake.count("sendTransaction") == 0


async def test_an_oversized_batch_is_a_packing_bug(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    with pytest.raises(TransactionError, match="1232-byte limit"):
        await run(sender, [cleanup(n) for n in range(1, 60)])
    assert fake.calls == []


async def test_two_in_flight_batches_never_share_an_account(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    chain.land_after_sends = None
    first = asyncio.create_task(run(sender, [cleanup(1), cleanup(2)]))
    await chain.first_send.wait()
    with pytest.raises(SafetyViolation, match="in-flight"):
        await run(sender, [cleanup(2)])
    await sender.shutdown(deadline_s=0)
    assert (await first).outcome is SendOutcome.ABANDONED


async def test_concurrent_batches_share_status_polls(
    fake: FakeRpc, chain: StubChain, rpc: RpcClient
) -> None:
    sender = Sender(
        rpc, fee_payer=ADMIN, program_id=PROGRAM, resend_interval_s=0.0, confirm_poll_s=0.02
    )
    chain.land_after_sends = 5
    results = await asyncio.gather(*(run(sender, [cleanup(n)]) for n in range(1, 5)))
    assert {r.outcome for r in results} == {SendOutcome.CONFIRMED}
    batch_sizes = [len(params[0]) for params in fake.params("getSignatureStatuses")]
    assert max(batch_sizes) > 1


async def test_shutdown_abandons_after_the_deadline_and_refuses_new_batches(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    chain.land_after_sends = None
    in_flight = asyncio.create_task(run(sender, [cleanup(1)]))
    await chain.first_send.wait()
    assert sender.in_flight == 1
    await sender.shutdown(deadline_s=0.05)
    result = await in_flight
    assert result.outcome is SendOutcome.ABANDONED
    assert result.signature is not None  # it may still land: the caller logs it
    assert sender.in_flight == 0
    calls = len(fake.calls)
    late = await run(sender, [cleanup(2)])
    assert late.outcome is SendOutcome.ABANDONED
    assert len(fake.calls) == calls


async def test_shutdown_waits_for_a_batch_that_lands_in_time(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    chain.land_after_sends = 3
    in_flight = asyncio.create_task(run(sender, [cleanup(1)]))
    await chain.first_send.wait()
    await sender.shutdown(deadline_s=30)
    assert (await in_flight).outcome is SendOutcome.CONFIRMED


# --- statuses that cannot be read: history, then "unknown" -----------------------------------


def failing_statuses(fake: FakeRpc, method: str = "getSignatureStatuses") -> None:
    def fail(_params: list[object]) -> object:
        raise RpcFailureError(-32603, f"{method} unavailable")

    fake.on(method, fail)


async def test_landed_while_statuses_fail_is_confirmed_from_history(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    failing_statuses(fake)
    chain.height, chain.height_step = LAST_VALID - 3, 1
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.CONFIRMED
    assert result.fee_paid_lamports == result.fee_lamports > 0
    assert fake.count("getTransaction") >= 1


async def test_landed_while_statuses_answer_null_is_confirmed_from_history(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    fake.on(
        "getSignatureStatuses", lambda params: {"context": {}, "value": [None] * len(params[0])}
    )
    chain.height, chain.height_step = LAST_VALID - 3, 1
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.CONFIRMED
    assert result.fee_paid_lamports > 0


async def test_landed_failed_while_statuses_fail_is_failed_from_history(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    failing_statuses(fake)
    chain.landed_error = {"InstructionError": [2, {"Custom": 6004}]}
    chain.height, chain.height_step = LAST_VALID - 3, 1
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.FAILED
    assert result.failure is not None
    assert result.failure.code == 6004


async def test_statuses_and_history_failing_is_unknown_never_expired(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    failing_statuses(fake)
    failing_statuses(fake, "getTransaction")
    chain.height, chain.height_step = LAST_VALID - 3, 1
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.UNKNOWN
    assert result.blockhash_expired
    assert result.may_have_landed
    assert result.fee_paid_lamports == 0  # not known to be paid; a budget counts it anyway


async def test_statuses_failing_without_ever_expiring_ends_unknown_not_abandoned(
    fake: FakeRpc, chain: StubChain, sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("keeper.chain.broadcast.MAX_POLL_FAILURES", 3)
    failing_statuses(fake)
    chain.land_after_sends = None  # history has nothing either
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.UNKNOWN
    assert not result.blockhash_expired  # it may still land


async def test_null_statuses_and_null_history_after_expiry_is_expired(
    fake: FakeRpc, chain: StubChain, sender: Sender
) -> None:
    chain.land_after_sends = None
    chain.height, chain.height_step = LAST_VALID - 3, 1
    result = await run(sender, [cleanup(1)])
    assert result.outcome is SendOutcome.EXPIRED
    assert fake.count("getTransaction") == 1  # history agreed before giving it up
