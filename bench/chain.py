"""The local chain's ``scale`` world with every parameter the world takes, for benchmarks.

chain.py PORT KEYPAIR_DIR JOBS MARKETS DUE_FRACTION
"""

import sys
from pathlib import Path

from keeper.localnet.standalone import main_localnet

port, keys, jobs, markets, due = sys.argv[1:6]
main_localnet(
    "scale",
    int(port),
    Path(keys),
    world_params={"jobs": int(jobs), "markets": int(markets), "due_fraction": float(due)},
)
