"""The executable program accounts every world holds, so ``getAccountInfo(<program id>)`` works.

Shaped like mainnet's: upgradeable BPF programs (jobs, staking, Metaplex) are 36-byte
``Program`` accounts pointing at their ProgramData; SPL Token is a BPF Loader 2 program;
the System and Compute Budget programs are native (their data is their name). Program
code itself is not stored: the local chain runs Python models.
"""

from __future__ import annotations

from typing import Final

from solders.pubkey import Pubkey

from keeper.localnet.model import Account
from keeper.program.ids import (
    COMPUTE_BUDGET_PROGRAM,
    METAPLEX_METADATA_PROGRAM,
    STAKING_PROGRAM,
    SYSTEM_PROGRAM,
    TOKEN_PROGRAM,
)

BPF_UPGRADEABLE_LOADER: Final = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
BPF_LOADER_2: Final = Pubkey.from_string("BPFLoader2111111111111111111111111111111111")
NATIVE_LOADER: Final = Pubkey.from_string("NativeLoader1111111111111111111111111111111")

_PROGRAM_ACCOUNT_TAG: Final = (2).to_bytes(4, "little")  # UpgradeableLoaderState::Program
_UPGRADEABLE_PROGRAM_LAMPORTS: Final = 1_141_440  # rent-exempt for its 36 bytes
# An ELF header stands in for SPL Token's code (nothing runs it).
_ELF_PLACEHOLDER: Final = b"\x7fELF"


def upgradeable_program(program_id: Pubkey) -> Account:
    programdata, _bump = Pubkey.find_program_address([bytes(program_id)], BPF_UPGRADEABLE_LOADER)
    return Account(
        lamports=_UPGRADEABLE_PROGRAM_LAMPORTS,
        data=_PROGRAM_ACCOUNT_TAG + bytes(programdata),
        owner=BPF_UPGRADEABLE_LOADER,
        executable=True,
    )


def native_program(name: str) -> Account:
    return Account(lamports=1, data=name.encode(), owner=NATIVE_LOADER, executable=True)


def program_accounts(jobs_program: Pubkey) -> dict[Pubkey, Account]:
    """The jobs program (at ``jobs_program``) and every program it deals with."""
    return {
        jobs_program: upgradeable_program(jobs_program),
        STAKING_PROGRAM: upgradeable_program(STAKING_PROGRAM),
        METAPLEX_METADATA_PROGRAM: upgradeable_program(METAPLEX_METADATA_PROGRAM),
        TOKEN_PROGRAM: Account(
            lamports=1_141_440, data=_ELF_PLACEHOLDER, owner=BPF_LOADER_2, executable=True
        ),
        SYSTEM_PROGRAM: native_program("system_program"),
        COMPUTE_BUDGET_PROGRAM: native_program("compute_budget_program"),
    }
