"""The floor a Python client can reach: one plain getProgramAccounts, stdlib JSON.

Usage: floor_scan.py URL PROGRAM_ID  (Done jobs, full data, as the cleaners of today load them)
"""

import base64
import json
import sys
import urllib.request

from keeper.program.filters import jobs_in_state
from keeper.program.state import JobState

url, program_id = sys.argv[1], sys.argv[2]
body = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "getProgramAccounts",
    "params": [program_id, {"encoding": "base64", "filters": jobs_in_state(JobState.DONE)}],
}
request = urllib.request.Request(
    url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
)
with urllib.request.urlopen(request, timeout=3600) as response:
    result = json.loads(response.read())["result"]
decoded = sum(len(base64.b64decode(item["account"]["data"][0])) for item in result)
print(json.dumps({"accounts": len(result), "bytes": decoded}))
