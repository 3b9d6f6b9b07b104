"""A byte-counting TCP relay for benchmarks: what each client received, and how many
getProgramAccounts it asked for, measured between it and the local chain.

    relay.py LISTEN_PORT UPSTREAM_PORT STATS_FILE

Raw bytes are forwarded both ways (HTTP keep-alive and streaming untouched); the totals
since start are rewritten to STATS_FILE (JSON) after every connection closes. One relay
per measured client (bench/full_pass.py starts and stops it).
"""

import asyncio
import json
import sys
from pathlib import Path

LISTEN, UPSTREAM, STATS = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
MARK = b'"getProgramAccounts"'
totals = {"bytes_received": 0, "get_program_accounts": 0}


def save() -> None:
    STATS.write_text(json.dumps(totals))


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, down: bool) -> None:
    tail = b""
    try:
        while chunk := await reader.read(1 << 20):
            if down:
                totals["bytes_received"] += len(chunk)
            else:
                window = tail + chunk
                totals["get_program_accounts"] += window.count(MARK) - tail.count(MARK)
                tail = window[-len(MARK) :]
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
    server_r, server_w = await asyncio.open_connection("127.0.0.1", UPSTREAM)
    await asyncio.gather(pipe(client_r, server_w, False), pipe(server_r, client_w, True))
    save()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    save()
    async with server:
        await server.serve_forever()


asyncio.run(main())
