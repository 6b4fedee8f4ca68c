"""The guest's contact details, checked at intake (pure; no I/O).

The email address goes into a mail header, so it must be exactly ONE address:
no CR/LF (header injection), no comma or semicolon list (a second recipient
is an open relay with guest-controlled text), no display name or comment, and
within the RFC 5321 length limits. The name goes into the message body: one
line of printable text, bounded.

`check_guest_email` and `check_guest_name` raise `InvalidBooking` (code
`invalid_email` / `invalid_name`) with a message a person can act on;
`email_problem` says why an address cannot be used, or None, for the mail
step to re-check rows written before this check existed.
"""

from __future__ import annotations

import re

from seatflow.domain.restaurant import InvalidBooking

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit, minus the angle brackets
MAX_LOCAL_LENGTH = 64
MAX_DOMAIN_LENGTH = 253
MAX_LABEL_LENGTH = 63
MAX_NAME_LENGTH = 100

# RFC 5322 dot-atom characters for the local part (no quoted strings: a
# quoted local part is where header tricks hide, and no guest needs one).
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
_LIST_SEPARATORS = (",", ";")


def email_problem(value: str) -> str | None:
    """Why `value` is not exactly one usable email address, or None."""
    if _CONTROL.search(value):
        return "contains a line break or control character"
    if any(sep in value for sep in _LIST_SEPARATORS):
        return "is a list; give exactly one address"
    if any(ch in value for ch in ' <>()"[]\\'):
        return "must be a bare address like ada@example.com (no name, spaces or brackets)"
    if len(value) > MAX_EMAIL_LENGTH:
        return f"is longer than {MAX_EMAIL_LENGTH} characters"
    if value.count("@") != 1:
        return "needs exactly one @, like ada@example.com"
    local, domain = value.split("@")
    if not local or not domain:
        return "needs a name before and a domain after the @"
    if not value.isascii():
        return "must be ASCII (write an international domain in its xn-- form)"
    if len(local) > MAX_LOCAL_LENGTH:
        return f"has more than {MAX_LOCAL_LENGTH} characters before the @"
    if not _LOCAL.match(local):
        return "has characters or dots before the @ that an address cannot have"
    if len(domain) > MAX_DOMAIN_LENGTH:
        return f"has a domain longer than {MAX_DOMAIN_LENGTH} characters"
    labels = domain.split(".")
    if len(labels) < 2:
        return "needs a domain with a dot, like example.com"
    if any(len(label) > MAX_LABEL_LENGTH or not _LABEL.match(label) for label in labels):
        return "has a domain that is not a host name"
    return None


def check_guest_email(value: str | None) -> str | None:
    """The address, surrounding spaces removed; None when not given.
    Raises InvalidBooking("invalid_email") when it is not exactly one address."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidBooking("invalid_email", "email must be text")
    cleaned = value.strip(" \t")
    if not cleaned:
        return None
    problem = email_problem(cleaned)
    if problem is not None:
        shown = cleaned if len(cleaned) <= 80 and not _CONTROL.search(cleaned) else (
            _CONTROL.sub("?", cleaned[:80]) + ("..." if len(cleaned) > 80 else ""))
        raise InvalidBooking("invalid_email", f"email {shown!r} is not an email address: {problem}")
    return cleaned


def check_guest_name(value: str | None) -> str | None:
    """The name, surrounding spaces removed; None when not given or blank.
    Raises InvalidBooking("invalid_name") for control characters or excess length."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidBooking("invalid_name", "name must be text")
    cleaned = value.strip()
    if not cleaned:
        return None
    if _CONTROL.search(cleaned):
        raise InvalidBooking("invalid_name", "name must be one line without control characters")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidBooking(
            "invalid_name", f"name is {len(cleaned)} characters; at most {MAX_NAME_LENGTH}"
        )
    return cleaned
