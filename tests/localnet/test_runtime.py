"""The runtime checks transactions as a cluster does and executes them atomically."""

from __future__ import annotations

import struct

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from toy_chain import GENESIS_TIME, NOOP, TOY_PROGRAM_ID, TOY_UNITS

from keeper.localnet.clock import MAX_BLOCKHASH_AGE
from keeper.localnet.ledger import CLOCK_SYSVAR
from keeper.localnet.model import Account
from keeper.localnet.node import PreflightError, SignatureVerificationError
from keeper.localnet.system_program import SYSTEM_PROGRAM
from keeper.localnet.transaction_view import PACKET_DATA_SIZE, MalformedTransactionError

BASE_UNITS = 1_000  # the runtime's base cost per non-builtin invocation


def send(kit, tx: VersionedTransaction, *, skip_preflight: bool = False) -> Signature:
    return kit.node.send_transaction(bytes(tx), skip_preflight=skip_preflight)


def landed(kit, sig: Signature):
    return kit.node.ledger.transaction(sig)


@pytest.mark.parametrize("legacy", [False, True], ids=["v0", "legacy"])
def test_a_transfer_lands_in_legacy_and_v0_form(kit, legacy):
    wallet = kit.label("wallet")
    before = kit.balance(wallet)

    sig = send(kit, kit.tx(kit.transfer(wallet, 1234), legacy=legacy))

    assert kit.balance(wallet) == before + 1234
    assert landed(kit, sig).err is None


def _padded_to(kit, size: int) -> VersionedTransaction:
    padding = size - len(bytes(kit.tx(kit.noop())))
    overshoot = len(bytes(kit.tx(kit.noop(bytes(padding))))) - size  # the length prefix grows
    return kit.tx(kit.noop(bytes(padding - overshoot)))


def test_a_transaction_of_exactly_1232_bytes_is_accepted(kit):
    tx = _padded_to(kit, PACKET_DATA_SIZE)
    assert len(bytes(tx)) == PACKET_DATA_SIZE

    assert landed(kit, send(kit, tx)) is not None


def test_a_transaction_of_1233_bytes_is_refused(kit):
    tx = _padded_to(kit, PACKET_DATA_SIZE + 1)
    assert len(bytes(tx)) == PACKET_DATA_SIZE + 1

    with pytest.raises(MalformedTransactionError, match="too large"):
        send(kit, tx)


def test_a_tampered_message_fails_signature_verification(kit):
    raw = bytearray(bytes(kit.tx(kit.write(kit.label("data_a"), b"12345678"))))
    raw[-5] ^= 0xFF  # a byte of the instruction data, covered by the signature

    with pytest.raises(SignatureVerificationError):
        kit.node.send_transaction(bytes(raw))
    assert kit.account(kit.label("data_a")).data == bytes(8)


def test_a_missing_cosignature_fails_verification(kit):
    tx = kit.tx(kit.transfer(kit.label("wallet"), 1))
    two_signers = kit.tx(
        kit.transfer(kit.label("wallet"), 1),
        kit.write(kit.label("data_a"), b"x" * 8),
    )
    # Same message, but a signature that does not belong to it.
    forged = VersionedTransaction.populate(two_signers.message, [tx.signatures[0]])

    with pytest.raises(SignatureVerificationError):
        kit.node.send_transaction(bytes(forged))


def test_a_blockhash_is_usable_for_150_blocks(kit):
    tx = kit.tx(kit.transfer(kit.label("wallet"), 1))
    kit.node.ledger.clock.advance(MAX_BLOCKHASH_AGE)

    assert landed(kit, send(kit, tx)) is not None


def test_a_blockhash_151_blocks_old_is_not_found(kit):
    tx = kit.tx(kit.transfer(kit.label("wallet"), 1))
    kit.node.ledger.clock.advance(MAX_BLOCKHASH_AGE + 1)

    with pytest.raises(PreflightError) as failed:
        send(kit, tx)
    assert failed.value.simulation.err == "BlockhashNotFound"


def test_an_expired_transaction_sent_without_preflight_never_lands(kit):
    tx = kit.tx(kit.transfer(kit.label("wallet"), 1))
    kit.node.ledger.clock.advance(MAX_BLOCKHASH_AGE + 1)
    payer_before = kit.balance(kit.payer.pubkey())

    sig = send(kit, tx, skip_preflight=True)

    assert landed(kit, sig) is None
    assert kit.balance(kit.payer.pubkey()) == payer_before


def test_a_duplicate_signature_is_already_processed(kit):
    tx = kit.tx(kit.transfer(kit.label("wallet"), 1))
    send(kit, tx)
    payer_after_first = kit.balance(kit.payer.pubkey())

    with pytest.raises(PreflightError) as failed:
        send(kit, tx)

    assert failed.value.simulation.err == "AlreadyProcessed"
    assert kit.balance(kit.payer.pubkey()) == payer_after_first


def test_the_fee_is_5000_per_signature_plus_the_priority_fee(kit):
    payer, cosigner = kit.payer, kit.cosigner
    before = kit.balance(payer.pubkey())
    # price x limit / 1e6 = 1_001 x 300_000 / 1e6 = 300.3 -> 301 lamports, rounded up.
    # Make the cosigner a required signer through a meta on the noop.
    tx = kit.tx(
        kit.cu_limit(300_000),
        kit.cu_price(1_001),
        _signed_noop(cosigner.pubkey()),
        signers=[payer, cosigner],
    )

    sig = send(kit, tx)

    assert landed(kit, sig).fee == 2 * 5_000 + 301
    assert kit.balance(payer.pubkey()) == before - (2 * 5_000 + 301)


def _signed_noop(signer: Pubkey) -> Instruction:
    return Instruction(
        TOY_PROGRAM_ID, bytes([NOOP]), [AccountMeta(signer, is_signer=True, is_writable=False)]
    )


def test_a_failed_transaction_that_lands_pays_its_fee_and_changes_nothing_else(kit):
    data_a = kit.label("data_a")
    before = kit.balance(kit.payer.pubkey())
    tx = kit.tx(kit.write(data_a, b"written!"), kit.fail(6005))

    sig = send(kit, tx, skip_preflight=True)

    record = landed(kit, sig)
    assert record.err == {"InstructionError": [1, {"Custom": 6005}]}
    assert record.fee == 5_000
    assert kit.balance(kit.payer.pubkey()) == before - 5_000
    assert kit.account(data_a).data == bytes(8)  # the first instruction's write is discarded


def test_a_transaction_failing_preflight_costs_nothing(kit):
    before = kit.balance(kit.payer.pubkey())

    with pytest.raises(PreflightError) as failed:
        send(kit, kit.tx(kit.fail(6000)))

    assert failed.value.simulation.err == {"InstructionError": [0, {"Custom": 6000}]}
    assert kit.balance(kit.payer.pubkey()) == before
    assert kit.node.ledger.transaction_count == 0


def test_the_requested_unit_limit_is_enforced(kit):
    tx = kit.tx(kit.cu_limit(10_000), kit.burn(20_000))

    with pytest.raises(PreflightError) as failed:
        send(kit, tx)

    simulation = failed.value.simulation
    assert simulation.err == {"InstructionError": [1, "ComputationalBudgetExceeded"]}
    assert simulation.units_consumed == 10_000
    assert f"Program {TOY_PROGRAM_ID} failed: exceeded CUs meter at BPF instruction" in (
        simulation.logs
    )


def test_units_up_to_the_limit_are_fine(kit):
    limit = 10_000
    burn = limit - 150 - BASE_UNITS - TOY_UNITS  # 150: the compute budget instruction
    sig = send(kit, kit.tx(kit.cu_limit(limit), kit.burn(burn)))

    assert landed(kit, sig).units_consumed == limit


def test_the_default_limit_is_200k_per_instruction(kit):
    fits = 200_000 - BASE_UNITS - TOY_UNITS
    assert landed(kit, send(kit, kit.tx(kit.burn(fits)))).err is None

    with pytest.raises(PreflightError) as failed:
        send(kit, kit.tx(kit.burn(fits + 1)))
    assert failed.value.simulation.err == {"InstructionError": [0, "ComputationalBudgetExceeded"]}


def test_a_limit_above_1_4m_is_capped(kit):
    over = 1_400_000 - 150 - BASE_UNITS - TOY_UNITS + 1

    with pytest.raises(PreflightError) as failed:
        send(kit, kit.tx(kit.cu_limit(2_000_000), kit.burn(over)))

    assert failed.value.simulation.units_consumed == 1_400_000


def test_a_repeated_compute_budget_instruction_is_refused(kit):
    with pytest.raises(PreflightError) as failed:
        send(kit, kit.tx(kit.cu_limit(1_000), kit.cu_limit(2_000), kit.noop()))

    assert failed.value.simulation.err == {"DuplicateInstruction": 1}


def test_writing_a_readonly_account_fails(kit):
    with pytest.raises(PreflightError) as failed:
        send(kit, kit.tx(kit.write(kit.label("data_a"), b"12345678", writable=False)))

    assert failed.value.simulation.err == {"InstructionError": [0, "ReadonlyDataModified"]}


def test_a_program_failure_is_logged_like_anchor(kit):
    with pytest.raises(PreflightError) as failed:
        send(kit, kit.tx(kit.fail(6000)))

    program = str(TOY_PROGRAM_ID)
    assert failed.value.simulation.logs == (
        f"Program {program} invoke [1]",
        (
            "Program log: AnchorError occurred. Error Code: ToyFailure. Error Number: 6000. "
            "Error Message: ToyFailure."
        ),
        f"Program {program} consumed {TOY_UNITS + BASE_UNITS} of 200000 compute units",
        f"Program {program} failed: custom program error: 0x1770",
    )


def test_a_closed_account_is_removed_and_its_lamports_moved(kit):
    data_a, wallet = kit.label("data_a"), kit.label("wallet")
    rent, before = kit.balance(data_a), kit.balance(wallet)

    send(kit, kit.tx(kit.close(data_a, wallet)))

    assert kit.account(data_a) is None
    assert kit.balance(wallet) == before + rent


def test_an_unknown_program_is_refused(kit):
    stranger = Instruction(Pubkey.new_unique(), b"", [])

    with pytest.raises(PreflightError) as failed:
        send(kit, kit.tx(stranger))

    assert failed.value.simulation.err == "ProgramAccountNotFound"


def test_a_fee_payer_that_does_not_exist_is_refused(kit):
    nobody = Keypair()
    tx = kit.tx(kit.noop(), payer=nobody)

    with pytest.raises(PreflightError) as failed:
        send(kit, tx)

    assert failed.value.simulation.err == "AccountNotFound"


def test_a_fee_payer_that_cannot_pay_is_refused(kit):
    poor = Keypair()
    kit.node.ledger.put(poor.pubkey(), Account(4_999, b"", SYSTEM_PROGRAM))

    with pytest.raises(PreflightError) as failed:
        send(kit, kit.tx(kit.noop(), payer=poor))

    assert failed.value.simulation.err == "InsufficientFundsForFee"


def test_a_system_transfer_beyond_the_balance_fails_with_system_error_1(kit):
    too_much = kit.balance(kit.payer.pubkey())

    with pytest.raises(PreflightError) as failed:
        send(kit, kit.tx(kit.transfer(kit.label("wallet"), too_much)))

    assert failed.value.simulation.err == {"InstructionError": [0, {"Custom": 1}]}


def test_the_clock_sysvar_reports_slot_and_chain_time(kit):
    clock = kit.node.ledger.clock
    clock.advance(25)  # 25 slots x 400 ms = 10 s

    data = kit.account(CLOCK_SYSVAR).data
    slot, _, epoch, _, unix_timestamp = struct.unpack("<QqQQq", data)

    assert (slot, epoch, unix_timestamp) == (clock.slot, 0, GENESIS_TIME + 10)
    assert len(data) == 40


def test_simulation_changes_nothing(kit):
    data_a = kit.label("data_a")
    simulation = kit.node.simulate(bytes(kit.tx(kit.write(data_a, b"12345678"))))

    assert simulation.err is None
    assert simulation.units_consumed == TOY_UNITS + BASE_UNITS
    assert kit.account(data_a).data == bytes(8)


def test_simulation_can_replace_an_expired_blockhash(kit):
    tx = kit.tx(kit.noop())
    kit.node.ledger.clock.advance(MAX_BLOCKHASH_AGE + 1)

    expired = kit.node.simulate(bytes(tx))
    replaced = kit.node.simulate(bytes(tx), replace_recent_blockhash=True)

    assert expired.err == "BlockhashNotFound"
    assert replaced.err is None
    assert replaced.replacement_blockhash == kit.node.ledger.clock.latest_blockhash
