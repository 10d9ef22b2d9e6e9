#!/usr/bin/python3
"""A real SMTP server (aiosmtpd) for channels/tests/email.rs.

Run with Debian's interpreter, which has python3-aiosmtpd:

    /usr/bin/python3 smtp_server.py PORT DIR [--refuse-first N] [--reject-all] [--auth USER:PASSWORD]

It listens on 127.0.0.1:PORT (0: the kernel picks one), prints the port as the first line on
stdout, and writes every accepted message to DIR/<n>.json with

    mail_from, rcpt_tos, data (the raw message, decoded as UTF-8), auth_login (or null),
    and, parsed by Python's e-mail package: subject, to, message_id, body.

--refuse-first N  answers "451 4.3.0 try again later" to the first N DATA commands.
--reject-all      answers "550 5.7.1 rejected" to every RCPT.
--auth USER:PASS  offers AUTH PLAIN and LOGIN without TLS and requires it before MAIL.

It runs until it is killed (the tests kill it when they drop it).
"""

import argparse
import email
import email.policy
import json
import os
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, out_dir, refuse_first, reject_all):
        self.out_dir = out_dir
        self.refuse_left = refuse_first
        self.reject_all = reject_all
        self.received = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_all:
            return "550 5.7.1 rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refuse_left > 0:
                self.refuse_left -= 1
                return "451 4.3.0 try again later"
            self.received += 1
            n = self.received
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        login = None
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": raw.decode("utf-8"),
            "auth_login": login,
            "subject": str(parsed["Subject"]),
            "to": str(parsed["To"]),
            "message_id": str(parsed["Message-ID"]),
            "content_type": parsed.get_content_type(),
            "body": body.get_content() if body is not None else None,
        }
        # Write then rename, so a reader never sees half a file.
        path = os.path.join(self.out_dir, f"{n}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.replace(path + ".tmp", path)
        return f"250 2.0.0 OK queued as {n}"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode("utf-8")
        self.password = password.encode("utf-8")

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class PortZeroController(Controller):
    """Controller that can listen on port 0: it reads the port the kernel chose before
    connecting to itself to check that it is up."""

    def _trigger_server(self):
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("port", type=int)
    p.add_argument("dir")
    p.add_argument("--refuse-first", type=int, default=0, metavar="N")
    p.add_argument("--reject-all", action="store_true")
    p.add_argument("--auth", metavar="USER:PASSWORD")
    args = p.parse_args()

    handler = Handler(args.dir, args.refuse_first, args.reject_all)
    kwargs = {}
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep:
            p.error("--auth wants USER:PASSWORD")
        kwargs.update(
            authenticator=Authenticator(user, password),
            auth_require_tls=False,
            auth_required=True,
        )
    controller = PortZeroController(
        handler, hostname="127.0.0.1", port=args.port, decode_data=False, **kwargs
    )
    controller.start()
    print(controller.port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
