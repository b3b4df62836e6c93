"""Fake model providers that speak the real OpenAI and Anthropic wire formats.

Shipped with chatd so its own tests, end-to-end runs and users' clients can exercise a full
turn without a real provider: :class:`~chatd.testing.fake_provider.FakeProvider` (the app and
its script), :mod:`chatd.testing.script` (the script format), :mod:`chatd.testing.runner`
(serving it on a loopback port) and ``chatd dev fake-provider``.
"""

from chatd.testing.fake_provider import FakeProvider, RecordedRequest, create_app
from chatd.testing.runner import serve_fake, serve_fake_in_thread
from chatd.testing.script import DEFAULT_TEXT, stamps

__all__ = [
    "DEFAULT_TEXT",
    "FakeProvider",
    "RecordedRequest",
    "create_app",
    "serve_fake",
    "serve_fake_in_thread",
    "stamps",
]
