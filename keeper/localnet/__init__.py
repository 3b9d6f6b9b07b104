"""The embedded local chain: a Solana JSON-RPC server on loopback with the Nosana Jobs
program's maintenance instructions, one account builder, seeded worlds and fault switches.
Only the ``demo`` and ``localnet`` commands (and tests) use it.
"""
