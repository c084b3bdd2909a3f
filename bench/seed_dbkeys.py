#!/usr/bin/env python3
"""A users_db (SQLite) for the rig's dbkeys scenarios: the rig's API keys (apikeys.map: "key
client" lines), each owned by a user whose subject is the client, plus filler keys of one more
user up to TOTAL keys. The schema is the gateway's own migration, applied here.

    seed_dbkeys.py DB_FILE APIKEYS_MAP TOTAL MIGRATION_SQL
"""
import hashlib
import json
import os
import sqlite3
import sys
import time

db_file, keys_map, total, migration = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
now = int(time.time())
con = sqlite3.connect(db_file)
con.executescript(open(migration).read())
con.execute("CREATE TABLE IF NOT EXISTS portcullis_schema (version BIGINT PRIMARY KEY NOT NULL, applied_at BIGINT NOT NULL)")
con.execute("INSERT INTO portcullis_schema VALUES (1, ?)", (now,))
HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0000000000000000000000000000000000000000000"


def user(name, subject):
    return (name, subject, HASH, '["admin"]', "{}", None, None, "[]", 0, now, now)


def key(i, owner, secret):
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return (f"key_{i:08d}", owner, "bench", secret[:8], digest, '["admin"]', "[]", None, now, None)


users, keys = [], []
pairs = [l.split() for l in open(keys_map) if len(l.split()) == 2]
# The keys the load presents come first: a 10-key database still holds client-0's.
for i, (secret, client) in enumerate(pairs[:total]):
    users.append(user(client.lower(), client))
    keys.append(key(i, client.lower(), secret))
users.append(user("filler", "filler"))
for i in range(len(keys), total):
    keys.append(key(i, "filler", "pcs_" + os.urandom(24).hex()))
con.executemany("INSERT INTO portcullis_users VALUES (?,?,?,?,?,?,?,?,?,?,?)", users)
con.executemany("INSERT INTO portcullis_api_keys VALUES (?,?,?,?,?,?,?,?,?,?)", keys)
con.commit()
print(f"{len(users)} users, {len(keys)} keys", file=sys.stderr)
