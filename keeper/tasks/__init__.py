"""PURE decisions: decoded accounts + chain time + parameters -> Plan.

One module per maintenance task (expired_runs, stopped_jobs, finished_jobs) and the census
of what is left alone; views, plan; packing (batching, txsize, builders, density) and the
fee policy (budget). No I/O, no wall clock, no RPC or metrics libraries.
"""
