"""PURE: the Nosana Jobs program as data.

Ids, PDAs, account layouts with fast decoders, JobState, getProgramAccounts filters,
instruction builders, error names and the package's own IDL. No I/O, no clocks.
"""
