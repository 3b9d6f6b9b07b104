"""Any interleaving of keeper restarts, claim passes, slow landings and re-sends leaves at
most one run on a job.

The keeper is modelled as what a restart cannot take away: it claims every Stopped job it
sees without a run on chain and not already in flight in *this* process (a restart forgets
what is in flight). Its transactions are built by the executor's own
``build_instructions`` and signed as the sender signs, then held "on their way" until the
test lands (or re-sends) them against the local chain's runtime in-process — so claims
from before and after a restart can land in any order, or after their blockhash expired.
The node quitting a run (the run closed, the job Stopped again) frees the job for a new
claim: that is a new run after the old one is gone, never two at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keeper.chain.transaction import compile_message, sign
from keeper.localnet.builder import World, WorldBuilder
from keeper.localnet.chain import LocalChain
from keeper.localnet.node import Node
from keeper.program.instructions import MaintenanceInstruction
from keeper.program.layouts import RUN_DISCRIMINATOR, RUN_RENT_LAMPORTS, decode_run
from keeper.program.state import JobState
from keeper.service.context import Identity
from keeper.service.execution import build_instructions
from keeper.tasks.identity import ClaimIdentity
from keeper.tasks.plan import Action, Reason

NOS = 1_000_000
JOBS = 3
BLOCKHASH_LIFETIME_SLOTS = 150


def _world() -> tuple[World, list[Pubkey], ClaimIdentity]:
    b = WorldBuilder(seed=7)
    node = b.keypair("keeper").pubkey()
    b.stake(authority=node, xnos=5_000 * NOS)
    nft = b.nft(owner=node)
    market = b.market(node_xnos_minimum=1_000 * NOS)
    jobs = [b.job(market=market, state=JobState.STOPPED) for _ in range(JOBS)]
    claim = ClaimIdentity.derive(
        authority=node, nft=nft.token_account, nft_mint=nft.mint, nos_mint=b.nos_mint
    )
    return b.build(), jobs, claim


@dataclass
class Keeper:
    """One keeper (its key survives restarts; what it holds in flight does not)."""

    node: Node
    identity: Identity
    market: Pubkey
    in_flight: set[Pubkey] = field(default_factory=set)

    def claim_pass(self, jobs: list[Pubkey]) -> bytes | None:
        claimed = runs_per_job(self.node)
        due = [job for job in jobs if not claimed[job] and job not in self.in_flight]
        if not due:
            return None
        actions = [
            Action(
                MaintenanceInstruction.CLAIM,
                job,
                Reason.JOB_STOPPED,
                self.identity.keypair.pubkey(),
                market=self.market,
                job=job,
                lamports=-RUN_RENT_LAMPORTS,
            )
            for job in due
        ]
        instructions, signers = build_instructions(actions, self.identity)
        message = compile_message(
            instructions,
            payer=self.identity.keypair.pubkey(),
            unit_limit=400_000,
            unit_price=0,
            blockhash=self.node.ledger.clock.latest_blockhash.blockhash,
            version="v0",
        )
        wire, _signature = sign(message, [self.identity.keypair, *signers])
        self.in_flight.update(due)
        return wire


def runs_per_job(node: Node) -> Counter[Pubkey]:
    runs: Counter[Pubkey] = Counter()
    for key in list(node.ledger.accounts.keys()):
        account = node.ledger.get(key)
        if account is not None and account.data[:8] == RUN_DISCRIMINATOR:
            runs[decode_run(account.data).job] += 1
    return runs


def run_addresses(node: Node, job: Pubkey) -> list[Pubkey]:
    found = []
    for key in list(node.ledger.accounts.keys()):
        account = node.ledger.get(key)
        is_run = account is not None and account.data[:8] == RUN_DISCRIMINATOR
        if is_run and decode_run(account.data).job == job:  # type: ignore[union-attr]
            found.append(key)
    return found


steps = st.lists(
    st.one_of(
        st.tuples(st.just("pass")),
        st.tuples(st.just("restart")),
        st.tuples(st.just("land"), st.integers(0, 20)),
        st.tuples(st.just("resend"), st.integers(0, 20)),
        st.tuples(st.just("slots"), st.integers(1, BLOCKHASH_LIFETIME_SLOTS + 10)),
        st.tuples(st.just("quit"), st.integers(0, JOBS - 1)),
    ),
    max_size=30,
)


# The case: claims sent, the keeper restarted (slots moved meanwhile), sent again.
RESTART_MID_CLAIM = [("pass",), ("restart",), ("slots", 1), ("pass",), ("land", 0), ("land", 0)]
# A stale claim from before the node quit lands after the job was claimed again.
STALE_AFTER_QUIT = [("pass",), ("resend", 0), ("quit", 0), ("restart",), ("pass",), ("land", 1)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(steps=RESTART_MID_CLAIM)
@example(steps=STALE_AFTER_QUIT)
@given(steps=steps)
def test_no_interleaving_of_restarts_and_sends_makes_two_runs_on_a_job(
    steps: list[tuple[object, ...]],
) -> None:
    world, jobs, claim = _world()
    node = LocalChain.build_node(world)
    keypair: Keypair = world.keypairs["keeper"]
    market = next(iter({_market_of(node, job) for job in jobs}))
    identity = Identity(
        keypair=keypair,
        program_id=world.program_id,
        market_admin=world.market_admin,
        nos_mint=world.nos_mint,
        node=keypair,
        claim=claim,
    )
    keeper = Keeper(node, identity, market)
    on_their_way: list[bytes] = []
    for step in steps:
        match step:
            case ("pass",):
                wire = keeper.claim_pass(jobs)
                if wire is not None:
                    on_their_way.append(wire)
            case ("restart",):
                keeper = Keeper(node, identity, market)  # nothing in flight is remembered
            case ("land", index) if on_their_way:
                node.send_transaction(
                    on_their_way.pop(int(index) % len(on_their_way)), skip_preflight=True
                )  # type: ignore[call-overload]
            case ("resend", index) if on_their_way:
                node.send_transaction(
                    on_their_way[int(index) % len(on_their_way)], skip_preflight=True
                )  # type: ignore[call-overload]
            case ("slots", count):
                node.ledger.clock.advance(int(count))  # type: ignore[call-overload]
            case ("quit", index):
                for run in run_addresses(node, jobs[int(index)]):  # type: ignore[call-overload]
                    node.ledger.delete(run)  # the node quit: its run is closed
        assert max(runs_per_job(node).values(), default=0) <= 1, step


def _market_of(node: Node, job: Pubkey) -> Pubkey:
    from keeper.program.layouts import decode_job  # noqa: PLC0415

    account = node.ledger.get(job)
    assert account is not None
    return decode_job(account.data).market
