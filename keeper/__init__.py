"""nosana-keeper: the maintenance service for the Nosana Jobs program on Solana."""

__version__ = "0.1.0"
