"""I/O: the only code holding an RPC client or a keypair.

rpc (transport, retries, rate limit, typed errors), scan (streamed getProgramAccounts),
accounts, clock (chain time), fees, keypair, and the sender (simulate, sign, send, confirm).
"""
