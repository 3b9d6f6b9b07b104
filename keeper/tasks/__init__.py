"""PURE decisions: decoded accounts + chain time + parameters -> Plan.

One module per maintenance task, plus packing (batching) and the fee policy (budget).
No I/O, no wall clock, no RPC or metrics libraries.
"""
