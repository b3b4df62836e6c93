"""A remote URL fit to show: without the password or token it may carry.

``https://user:ghp_...@github.com/o/r`` becomes ``https://github.com/o/r``; an ssh URL keeps
its user name (``git@``, ``ssh://git@``) and loses any password. Anything else (an scp-style
``host:path``, a local path) is returned as it is.
"""

from __future__ import annotations

import urllib.parse

_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")


def public_origin(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    if parts.scheme.lower() in _SSH_SCHEMES:
        user = userinfo.split(":", 1)[0]
        host = f"{user}@{host}" if user else host
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
