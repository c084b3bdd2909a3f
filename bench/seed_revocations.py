#!/usr/bin/env python3
"""Revokes jtis and subjects that the load never presents, so that the revocation check on every
request is a real lookup, not the empty list's shortcut.

    PORTCULLIS_ADMIN_TOKEN=... seed_revocations.py ADMIN_HOST:PORT [JTIS] [SUBJECTS]

Waits (up to 15 s, or $SEED_WAIT s) for the admin listener, then POSTs /admin/revoke over one keep-alive
connection. Prints how many were accepted; exits 1 if any was refused.
"""
import http.client
import json
import os
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
jtis = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
subjects = int(sys.argv[3]) if len(sys.argv) > 3 else 100
headers = {
    "Authorization": "Bearer " + os.environ["PORTCULLIS_ADMIN_TOKEN"],
    "Content-Type": "application/json",
}

deadline = time.time() + float(os.environ.get("SEED_WAIT", "15"))
while True:
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("admin listener not answering")
        time.sleep(0.05)

bodies = [{"jti": f"bench-revoked-{i}"} for i in range(jtis)]
bodies += [{"subject": f"revoked-user-{i}"} for i in range(subjects)]
accepted = 0
for body in bodies:
    conn.request("POST", "/admin/revoke", json.dumps(body), headers)
    r = conn.getresponse()
    r.read()
    if r.status != 204:
        sys.exit(f"revoke {body} answered {r.status}")
    accepted += 1
print(f"revoked {accepted} ({jtis} jtis, {subjects} subjects)")
