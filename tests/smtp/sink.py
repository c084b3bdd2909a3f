"""A real SMTP server for the tests (Python's aiosmtpd): every message it accepts is written
to DIR as N.json ({"mail_from", "rcpt_tos", "data"}). Listens on 127.0.0.1, a free port, and
prints one line, {"port": N}, when it does. Exits when stdin closes.

    python3 tests/smtp/sink.py DIR [--starttls CERT KEY] [--require-starttls] [--smtps CERT KEY]
                                   [--auth USER:PASSWORD] [--fail N]

--fail N answers the first N messages 451 (a transient failure: the sender retries).
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, directory, fail):
        self.directory = directory
        self.fail = fail
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        if self.fail > 0:
            self.fail -= 1
            return "451 4.3.0 try again later"
        self.count += 1
        path = os.path.join(self.directory, f"{self.count}.json")
        body = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            # STARTTLS (session.ssl) or TLS from the first byte (the transport's).
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "auth": session.authenticated,
        }
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(body, f)
        os.rename(tmp, path)
        return "250 OK"


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--starttls", nargs=2)
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--smtps", nargs=2)
    p.add_argument("--auth")
    p.add_argument("--fail", type=int, default=0)
    a = p.parse_args()
    handler = Sink(a.dir, a.fail)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            f"{auth_data.login.decode()}:{auth_data.password.decode()}" == a.auth
        )
        return AuthResult(success=ok)

    def factory():
        return SMTP(
            handler,
            tls_context=tls_context(*a.starttls) if a.starttls else None,
            require_starttls=a.require_starttls,
            authenticator=authenticator if a.auth else None,
            auth_required=bool(a.auth),
            auth_require_tls=False,
        )

    loop = asyncio.get_running_loop()
    implicit = tls_context(*a.smtps) if a.smtps else None
    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=implicit)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    # Until stdin closes (the test that started it ended).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
