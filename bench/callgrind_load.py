#!/usr/bin/env python3
"""The fixed request mix for bench/callgrind.sh: one keep-alive connection, every credential of
the file once (so that caches are warm), then N requests cycling through them. Every answer
must be 200, and with CHECK_IDENTITY=1 the upstream must have seen the verified identity: a
count of refusals would measure the wrong path.

    callgrind_load.py HOST:PORT N [CREDENTIAL_FILE]     (no file: no credential)
"""
import http.client
import os
import sys

host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
creds = [line.strip() for line in open(sys.argv[3])] if len(sys.argv) > 3 else [""]
creds = [c for c in creds if c] or [""]

check = os.environ.get("CHECK_IDENTITY") == "1"
conn = http.client.HTTPConnection(host, int(port), timeout=120)


def one(cred):
    # The rig's spoofed identity: the gateway must replace it.
    headers = {"X-User-Id": "spoofed", "Accept": "*/*"}
    if cred:
        headers["Authorization"] = "Bearer " + cred
    conn.request("GET", "/api/items?page=1", headers=headers)
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"answered {r.status}")
    if check and r.getheader("X-Seen-User") in (None, "", "spoofed"):
        sys.exit(f"the upstream saw X-User-Id {r.getheader('X-Seen-User')!r}")


for c in creds:
    one(c)
for i in range(n):
    one(creds[i % len(creds)])
print(f"{len(creds)} + {n} requests, all 200")
