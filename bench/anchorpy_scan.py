"""anchorpy's ``account["JobAccount"].all()`` on the same filter, for comparison.

Usage: anchorpy_scan.py URL PROGRAM_ID
"""

import asyncio
import json
import sys

from anchorpy import Program, Provider, Wallet
from solana.rpc.async_api import AsyncClient
from solana.rpc.types import MemcmpOpts
from solders.pubkey import Pubkey

from keeper.program.anchor import jobs_idl
from keeper.program.layouts import JobOffset


async def main(url: str, program_id: str) -> None:
    client = AsyncClient(url, timeout=3600)
    provider = Provider(client, Wallet.dummy())
    program = Program(jobs_idl(), Pubkey.from_string(program_id), provider)
    done = [MemcmpOpts(offset=JobOffset.STATE, bytes="3")]
    accounts = await program.account["JobAccount"].all(filters=done)
    print(json.dumps({"accounts": len(accounts)}))
    await client.close()


asyncio.run(main(sys.argv[1], sys.argv[2]))
