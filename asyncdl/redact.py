"""Secrets out of text: URLs are shown with their token and signature parameters masked, in every message
and log (a presigned object-store URL is a credential while it is valid)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMS = {"access_token", "token"}
# presigned URLs: S3 (SigV4 and SigV2), Google Cloud Storage, Azure SAS; compared in lower case
SIGNATURE_PARAMS = {"x-amz-signature", "x-amz-credential", "x-amz-security-token", "signature",
                    "x-goog-signature", "x-goog-credential", "sig"}


def redact(url: str) -> str:
    """The URL with secret query parameters (access_token, token, signatures) masked, for messages and logs."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = [(k, "***" if k in SECRET_PARAMS or k.lower() in SIGNATURE_PARAMS else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe=":/*")))
