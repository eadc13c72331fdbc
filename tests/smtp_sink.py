#!/usr/bin/python3
"""A real SMTP server for Lookout's notifier tests.

Runs Debian's aiosmtpd (package python3-aiosmtpd) on HOST:PORT and writes
every message it accepts into DIR as one JSON file, atomically (written to a
hidden temporary name, then renamed), so a test never reads half a message:

    {"mail_from": ..., "rcpt_tos": [...], "subject": ..., "from": ..., "to": ...,
     "content_type": "multipart/alternative", "headers": [[name, value], ...],
     "text": <decoded text/plain part or null>, "html": <decoded text/html part or null>}

Parsing happens here, with Python's standard email package, because it is
a complete MIME implementation (transfer encodings, charsets, encoded header
words) that is already present wherever aiosmtpd is: the Rust side reads
plain JSON and needs no MIME crate of its own.

A recipient whose local part starts with "reject" is refused with a
permanent "550 5.1.1", to test how a sender handles permanent rejections.

Stops on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import signal
import sys
import time

from aiosmtpd.smtp import SMTP


class Sink:
    """aiosmtpd handler: accepts everything but "reject*" recipients."""

    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0].lower().startswith("reject"):
            return "550 5.1.1 <%s>: recipient rejected by the test sink" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(message.get("Subject", "")),
            "from": str(message.get("From", "")),
            "to": str(message.get("To", "")),
            "content_type": message.get_content_type(),
            "headers": [[name, str(value)] for name, value in message.items()],
            "text": body_text(text),
            "html": body_text(html),
        }
        name = "%020d-%06d.json" % (time.time_ns(), next(self.counter))
        temporary = os.path.join(self.directory, "." + name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(record, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, os.path.join(self.directory, name))
        return "250 2.0.0 Message accepted"


def body_text(part):
    """A decoded text part with the wire's CRLF line ends turned into LF."""
    if part is None:
        return None
    return part.get_content().replace("\r\n", "\n")


async def serve(host, port, directory):
    loop = asyncio.get_running_loop()
    sink = Sink(directory)
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="smtp-sink.test"), host=host, port=port, reuse_address=True
    )
    stopped = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stopped.done() or stopped.set_result(None))
    print("smtp_sink listening on %s:%d, writing to %s" % (host, port, directory), flush=True)
    await stopped
    server.close()
    await server.wait_closed()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    asyncio.run(serve(args.host, args.port, args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
