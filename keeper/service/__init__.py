"""Wiring: the one settings model, the CLI, the scheduler and runner (a pass is
chain.scan -> tasks.decide -> chain.send), metrics, health and logs.
"""
