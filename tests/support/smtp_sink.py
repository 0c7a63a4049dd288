"""A real SMTP server for tests (aiosmtpd, in-process on a free port) that keeps every message.

    from support.smtp_sink import smtp_sink                # tests/ is on pytest's pythonpath

    with smtp_sink() as mailbox:
        ...send mail to 127.0.0.1:mailbox.port...
        mailbox.messages[0]["Subject"], mailbox.messages[0].recipients

Messages are parsed ``email.message.EmailMessage`` objects, with ``recipients`` (the SMTP envelope)
added; ``text_of(message)`` gives the decoded body of every text part.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        message = message_from_bytes(envelope.content, policy=policy.default)
        message.recipients = list(envelope.rcpt_tos)  # type: ignore[attr-defined]
        message.sender = envelope.mail_from  # type: ignore[attr-defined]
        self.messages.append(message)
        return "250 Message accepted for delivery"


def text_of(message: EmailMessage) -> str:
    """Every text part's decoded content, joined."""
    return "\n".join(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")


@contextmanager
def smtp_sink() -> Iterator[Mailbox]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox(port)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
