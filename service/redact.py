"""Secrets kept out of what is printed or logged: a URL's password, `password=` settings."""

from __future__ import annotations

import re

from sqlalchemy.engine import URL

MASK = "***"
# scheme://user:password@host: SQLAlchemy's grammar has no ':' or '/' in the user name and
# no '@' in the password (it is %-encoded there).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@")
# user:password@host in text that failed to be a URL (postgresql//u:p@h, a mangled path).
_BARE_PASSWORD = re.compile(r"(?P<head>(?:^|(?<=[/\s'\"(=]))[^\s:/@'\"]+:)[^@\s/]*@")
# password=... in a query string or a libpq key=value connection string.
_KEY_PASSWORD = re.compile(r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?:'[^']*'|[^&\s]+)", re.I)


def redact(value: str | URL) -> str:
    """`value` (a SQLAlchemy URL or any text, e.g. an error) with each password as ***."""
    text = value.render_as_string(hide_password=True) if isinstance(value, URL) else value
    for pattern in (_URL_PASSWORD, _BARE_PASSWORD):
        text = pattern.sub(rf"\g<head>{MASK}@", text)
    return _KEY_PASSWORD.sub(rf"\g<head>{MASK}", text)
