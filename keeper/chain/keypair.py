"""The keeper's keypairs: loading the Solana CLI JSON file of 64 numbers (secret + public
key), and deriving the keypair of a run account a claim creates.

Every failure names the file and the fix. Key material never appears in a message, a log
line or a chained exception.
"""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keeper.errors import KeypairError

KEYPAIR_LENGTH: Final = 64
# Separates this use of the node's secret from any other hash of it (versioned: a new
# derivation would need a new tag, never a silent change of the addresses).
RUN_SEED_DOMAIN: Final = b"nosana-keeper/claim-run/v1\x00"
_CREATE_HINT: Final = "create one with `solana-keygen new -o <path>` or point KEEPER_KEYPAIR at it"


def _read(path: Path) -> str:
    if not path.exists():
        raise KeypairError(f"keypair file {path} does not exist", hint=_CREATE_HINT)
    if path.is_dir():
        raise KeypairError(f"keypair path {path} is a directory, not a file", hint=_CREATE_HINT)
    try:
        return path.read_text(encoding="utf-8")
    except PermissionError:
        raise KeypairError(
            f"keypair file {path} is not readable by this user",
            hint="give the keeper's user read permission (chmod 400, owned by that user)",
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise KeypairError(
            f"keypair file {path} cannot be read as text ({type(error).__name__})"
        ) from None


def _numbers(path: Path, text: str) -> list[int]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        # The decoder's message names a position only; the document itself is never shown.
        raise KeypairError(
            f"keypair file {path} is not JSON (line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(values, list):
        raise KeypairError(f"keypair file {path} holds a JSON {type(values).__name__}, not a list")
    if len(values) != KEYPAIR_LENGTH:
        raise KeypairError(
            f"keypair file {path} holds {len(values)} numbers, expected {KEYPAIR_LENGTH}"
        )
    bad = [i for i, v in enumerate(values) if type(v) is not int or not 0 <= v <= 255]
    if bad:
        raise KeypairError(
            f"keypair file {path}: {len(bad)} entries are not integers 0-255 "
            f"(first at position {bad[0]})"
        )
    return values


def load_keypair(path: Path | str) -> Keypair:
    """The keypair stored at ``path`` (``~`` expanded), validated by solders."""
    location = Path(path).expanduser()
    values = _numbers(location, _read(location))
    try:
        return Keypair.from_bytes(bytes(values))
    except ValueError:
        raise KeypairError(
            f"keypair file {location}: its public half does not match its secret half",
            hint="the file is corrupt or hand-edited; restore it from a backup",
        ) from None


def run_keypair(node: Keypair, job: Pubkey) -> Keypair:
    """The keypair of the RunAccount that ``node`` creates when it claims ``job``.

    Always the same for one node and one job (ed25519 seed = sha256(tag || node secret ||
    job)), so a repeated claim (after a restart, from a second replica) tries to ``init``
    the same account, and the System program refuses it (AccountAlreadyInUse): one run per
    job, whatever the keeper remembers. Nobody without the node's secret can predict it.
    """
    seed = hashlib.sha256(RUN_SEED_DOMAIN + node.secret() + bytes(job)).digest()
    return Keypair.from_seed(seed)


# Permission bits for "other" users. Group bits are allowed: Kubernetes mounts a Secret
# 0440 with the pod's fsGroup as group, so only the keeper's own group can read it there.
_OTHER_BITS: Final = stat.S_IRWXO


@dataclass(frozen=True, slots=True)
class Exposure:
    """A keypair file users other than its owner and group can access."""

    path: Path
    mode: int

    @property
    def message(self) -> str:
        return f"keypair file {self.path} is accessible by other users (mode {self.mode:04o})"

    @property
    def fix(self) -> str:
        return f"chmod 600 {self.path}"


def exposure(path: Path | str) -> Exposure | None:
    """Set when users outside the file's owner and group can read or change it.

    ssh refuses such private keys; the keeper warns (with the ``chmod`` that fixes it) and
    goes on. None when the mode is private enough, or the file cannot be inspected (loading
    it reports that).
    """
    location = Path(path).expanduser()
    try:
        mode = stat.S_IMODE(location.stat().st_mode)
    except OSError:
        return None
    return Exposure(location, mode) if mode & _OTHER_BITS else None
