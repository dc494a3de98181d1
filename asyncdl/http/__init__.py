"""HTTP for asyncdl: the only package that imports aiohttp (the emulator aside).

- :mod:`.client`: one :class:`Client` per run: the session, the User-Agent, the token (a Bearer header,
  only to the configured host, never across a redirect to another), one governor per host, redirects
  followed hop by hop, 429s waited out, every failure translated into an asyncdl error.
- :mod:`.response`: :class:`Response`, what callers read: status, headers, URL and ``chunks()``.
- :mod:`.retry`: the one retry policy of JSON requests, streams and segments.
- :mod:`.statuses`: HTTP error statuses as asyncdl errors.
"""

from asyncdl.http import retry
from asyncdl.http.client import Client, Hop, host_key, host_of
from asyncdl.http.response import Response, is_html, with_params
from asyncdl.http.retry import Retry, backoff
from asyncdl.http.statuses import error_for

__all__ = ["Client", "Hop", "Response", "Retry", "backoff", "error_for", "host_key", "host_of", "is_html", "retry",
           "with_params"]
