"""Fixtures for the local chain's tests: a Node over the toy world, a running chain, a kit."""

from __future__ import annotations

import pytest
from solana.rpc.async_api import AsyncClient
from toy_chain import Kit, ToyProgram, ToyWorld, build_toy_world

from keeper.localnet.chain import LocalChain


@pytest.fixture
def toy_world() -> ToyWorld:
    return build_toy_world()


@pytest.fixture
def toy_node(toy_world):
    """A Node over the toy world, no server, clock moved only by the test."""
    return LocalChain.build_node(toy_world, programs=[ToyProgram()])


@pytest.fixture
def kit(toy_world, toy_node) -> Kit:
    return Kit(toy_world, toy_node)


@pytest.fixture
async def toy_chain(toy_world):
    async with LocalChain.start(toy_world, auto_advance=False, programs=[ToyProgram()]) as chain:
        yield chain


@pytest.fixture
def chain_kit(toy_world, toy_chain) -> Kit:
    return Kit(toy_world, toy_chain.node)


@pytest.fixture
async def client(toy_chain):
    async with AsyncClient(toy_chain.url) as solana_client:
        yield solana_client
