"""Accounts as JSON-RPC answers, including getProgramAccounts streamed in chunks.

A getProgramAccounts answer over the scale world runs to hundreds of megabytes, so it is
produced as a ``StreamedJson``: the server writes it chunk by chunk. Base64 for a whole
selection is one ``b64encode`` over the rows padded to a multiple of 3 bytes, cut into
equal pieces: per-row Python work is only the record's f-string.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Final

import based58
import numpy as np

from keeper.localnet.rpc_params import INVALID_REQUEST, RpcMethodError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    import numpy.typing as npt

    from keeper.localnet.account_store import DataSlice, Selection
    from keeper.localnet.model import Account

# Accounts are all rent-exempt: nodes report rentEpoch as u64::MAX.
RENT_EPOCH: Final = 18_446_744_073_709_551_615
ACCOUNT_ENCODINGS: Final = ("base64", "base58", "jsonParsed")
MAX_BASE58_BYTES: Final = 128
_RECORDS_PER_CHUNK: Final = 4_096


class StreamedJson:
    """A JSON value written as consecutive text chunks (never one giant string)."""

    def __init__(self, chunks: Iterable[str]) -> None:
        self._chunks = chunks

    def chunks(self) -> Iterator[str]:
        yield from self._chunks

    def text(self) -> str:
        return "".join(self.chunks())


def with_context(context: dict[str, object], value: StreamedJson) -> StreamedJson:
    head = '{"context":' + json.dumps(context, separators=(",", ":")) + ',"value":'
    return StreamedJson(_framed(head, value.chunks(), "}"))


def _framed(head: str, body: Iterator[str], tail: str) -> Iterator[str]:
    yield head
    yield from body
    yield tail


def _check_base58(length: int) -> None:
    if length > MAX_BASE58_BYTES:
        raise RpcMethodError(
            INVALID_REQUEST,
            "Encoded binary (base 58) data should be less than 128 bytes, "
            "please use Base64 encoding.",
        )


def encode_data(data: bytes, encoding: str) -> list[str]:
    if encoding == "base58":
        _check_base58(len(data))
        return [based58.b58encode(data).decode(), "base58"]
    return [base64.b64encode(data).decode(), "base64"]


def account_json(
    account: Account, encoding: str, data_slice: DataSlice | None = None
) -> dict[str, object]:
    data = account.data
    if data_slice is not None:
        data = data[data_slice.offset : data_slice.offset + data_slice.length]
    return {
        "data": encode_data(data, encoding),
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": RENT_EPOCH,
        "space": len(account.data),
    }


def program_accounts(selections: Sequence[Selection], encoding: str) -> StreamedJson:
    """The ``[{"pubkey", "account"}, ...]`` array of a getProgramAccounts answer."""
    if encoding == "base58":
        for selection in selections:
            _check_base58(selection.data.shape[1])
    return StreamedJson(_framed("[", _records(selections, encoding), "]"))


def _records(selections: Sequence[Selection], encoding: str) -> Iterator[str]:
    first = True
    for selection in selections:
        for start in range(0, len(selection), _RECORDS_PER_CHUNK):
            chunk = ",".join(_chunk_records(selection, start, encoding))
            yield chunk if first else "," + chunk
            first = False


def _chunk_records(selection: Selection, start: int, encoding: str) -> list[str]:
    stop = min(start + _RECORDS_PER_CHUNK, len(selection))
    rows = selection.data[start:stop]
    if encoding == "base58":
        datas = [based58.b58encode(row.tobytes()).decode() for row in rows]
        kind = "base58"
    else:
        datas = base64_rows(rows)
        kind = "base64"
    tail = (
        f'","{kind}"],"owner":"{selection.owner}","rentEpoch":{RENT_EPOCH},'
        f'"space":{selection.space},'
    )
    executables = ["true" if flag else "false" for flag in selection.executable[start:stop]]
    return [
        f'{{"account":{{"data":["{data}{tail}"executable":{executable},'
        f'"lamports":{lamports}}},"pubkey":"{key}"}}'
        for data, executable, lamports, key in zip(
            datas,
            executables,
            selection.lamports[start:stop].tolist(),
            selection.keys[start:stop],
            strict=True,
        )
    ]


def base64_rows(rows: npt.NDArray[np.uint8]) -> list[str]:
    """Standard base64 of each row, computed in one pass over all rows."""
    count, width = rows.shape
    if width == 0:
        return [""] * count
    padded_width = -(-width // 3) * 3
    padded = np.zeros((count, padded_width), dtype=np.uint8)
    padded[:, :width] = rows
    text_width = padded_width // 3 * 4
    encoded = np.frombuffer(base64.b64encode(padded.tobytes()), dtype=np.uint8)
    encoded = encoded.reshape(count, text_width).copy()
    # Zero padding encodes as "A"; standard base64 ends the last group with "=" instead.
    pad = padded_width - width
    if pad:
        encoded[:, text_width - pad :] = ord("=")
    return encoded.view(f"S{text_width}").ravel().astype(f"U{text_width}").tolist()
