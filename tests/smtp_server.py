"""A small SMTP server for tests: real SMTP over TCP on 127.0.0.1, with
scripted replies, so the mail path is exercised through `smtplib` exactly as
against a production relay.

`replies` maps a step to the reply it gives (default 250): "rcpt" is asked per
recipient, so a script can refuse one address with 550 and another with 451.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: str


@dataclass
class SmtpServer:
    # recipient -> (code, text) for RCPT TO; None accepts it.
    rcpt_reply: Callable[[str], tuple[int, str] | None] = lambda _r: None
    data_delay: float = 0.0  # seconds before the reply to the message body
    received: list[Received] = field(default_factory=list)
    rcpt_attempts: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.base_events.Server | None = None

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def reply(line: str) -> None:
            writer.write((line + "\r\n").encode())

        sender, recipients = "", []
        reply("220 test-smtp ready")
        try:
            while True:
                await writer.drain()
                raw = await reader.readline()
                if not raw:
                    return
                line = raw.decode(errors="replace").rstrip("\r\n")
                verb = line[:4].upper()
                if verb in ("EHLO", "HELO"):
                    reply("250 test-smtp")
                elif verb == "MAIL":
                    sender, recipients = line.split(":", 1)[1].strip().strip("<>"), []
                    reply("250 ok")
                elif verb == "RCPT":
                    rcpt = line.split(":", 1)[1].strip().split(" ")[0].strip("<>")
                    self.rcpt_attempts.append(rcpt)
                    scripted = self.rcpt_reply(rcpt)
                    if scripted is None:
                        recipients.append(rcpt)
                        reply("250 ok")
                    else:
                        reply(f"{scripted[0]} {scripted[1]}")
                elif verb == "DATA":
                    reply("354 go ahead")
                    await writer.drain()
                    body = []
                    while True:
                        chunk = (await reader.readline()).decode(errors="replace")
                        if chunk in (".\r\n", ".\n", ""):
                            break
                        body.append(chunk)
                    if self.data_delay:
                        await asyncio.sleep(self.data_delay)
                    self.received.append(Received(sender, list(recipients), "".join(body)))
                    reply("250 queued")
                elif verb == "RSET":
                    sender, recipients = "", []
                    reply("250 ok")
                elif verb == "NOOP":
                    reply("250 ok")
                elif verb == "QUIT":
                    reply("221 bye")
                    await writer.drain()
                    return
                else:
                    reply("502 not implemented")
        finally:
            writer.close()
