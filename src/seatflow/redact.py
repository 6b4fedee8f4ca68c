"""Scrubbing secrets and personal data out of text that leaves the process.

Two kinds of value must never be printed, logged or handed to Temporal:

- the password in a database URL (`postgresql://user:PASSWORD@host/db`): error
  messages from SQLAlchemy, Alembic and our own checks may quote the URL;
- a guest's email address: SMTP errors quote the recipient, and Temporal stores
  activity failure messages unencrypted in the workflow history.

Pure string functions: no I/O, safe to import anywhere.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# scheme://user:password@  -- the password is anything up to the last '@' of
# the authority (a password may itself contain ':' or '@' when not escaped).
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s'\"]*):(?P<password>[^\s'\"/]*)@"
)
# Deliberately loose: anything shaped like local@domain, including quoted or
# angle-bracketed forms SMTP servers echo back.
# A match starts at the beginning of its local part ('/' before it is a URL's
# user name, not an address); '*' is left out so a masked URL password is kept.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9.!#$%&'+/=?^_`{|}~\-])"
    r"[A-Za-z0-9.!#$%&'+=?^_`{|}~\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*"
)
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>.*)@")

REDACTED_PASSWORD = "***"
REDACTED_EMAIL = "<guest address>"


def mask_url(url: str | None) -> str | None:
    """The URL with its password replaced by ***; unchanged when it has none."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not parseable as a URL: hide everything before the last '@'
        return _USERINFO.sub(
            lambda m: f"{m.group('scheme')}{m.group('info').split(':', 1)[0]}:{REDACTED_PASSWORD}@"
            if ":" in m.group("info") else m.group(0),
            url,
        )
    if password:
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED_PASSWORD}@{netloc[1]}"))
    return redact_secrets(url)


def url_password(url: str | None) -> str | None:
    """The password of a URL, also when the URL is malformed; None without one."""
    match = _USERINFO.match(url or "")
    if match is None or ":" not in match.group("info"):
        return None
    return match.group("info").split(":", 1)[1] or None


def redact_secrets(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """Every `scheme://user:password@` in `text` with the password masked, and
    every literal in `secrets` (a known password, in any context) too."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, REDACTED_PASSWORD)
    return _URL_CREDENTIALS.sub(
        lambda m: f"{m.group('scheme')}{m.group('user')}:{REDACTED_PASSWORD}@", text
    )


def redact_emails(text: str) -> str:
    """Every email address in `text` replaced by a placeholder."""
    return _EMAIL.sub(REDACTED_EMAIL, text)


def redact(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """Both: what an error message needs before it is printed, logged or stored."""
    return redact_emails(redact_secrets(text, secrets))
