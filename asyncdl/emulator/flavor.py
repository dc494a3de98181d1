"""What sets the two servers the emulator plays apart: zenodo.org and a stock InvenioRDM instance.

Sourced in ../shared/reference/invenio-rdm.md and checked against recorded responses of both
(tests/fixtures/zenodo-recorded, tests/fixtures/invenio-recorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from asyncdl.emulator import ids

FlavorName = Literal["zenodo", "invenio"]
FLAVORS: tuple[FlavorName, ...] = ("zenodo", "invenio")


@dataclass(frozen=True)
class Flavor:
    """One server's ways: ids, DOIs, the default JSON, page caps, limits and the headers that tell it."""

    name: FlavorName
    doi_prefix: str
    native_by_default: bool  # application/json is the native shape (stock) or Zenodo's legacy one
    page_caps: bool  # Zenodo's 25 (guest) / 100 (token) page sizes; stock enforces only the 10,000 window
    archive_cap: bool  # Zenodo refuses files-archive above archive_limit; stock has no cap
    search_budget: bool  # Zenodo counts searches in a budget of their own (30/min)
    relative_redirects: bool  # the parent-to-latest 302 has a relative Location and an HTML body
    legacy_query_fields: bool  # owners:, communities:, doi:, recid: ... (Zenodo rewrites them)
    sort_by_in_search: bool  # a search answer names its sort in "sortBy"
    server_header: str

    def public_id(self, number: int) -> str:
        """The id the server shows for the dataset's record (or concept) ``number``."""
        return ids.to_public(number) if self.name == "invenio" else str(number)

    def number_of(self, public: str) -> int | None:
        """The dataset's number for an id in a URL, or None when no record can have it."""
        if self.name == "invenio":
            return ids.to_internal(public)
        return int(public) if public.isdigit() else None

    def doi(self, number: int) -> str:
        return f"{self.doi_prefix}{self.public_id(number)}"

    def number_of_doi(self, doi: str) -> int | None:
        doi = doi.lower()
        return self.number_of(doi[len(self.doi_prefix):]) if doi.startswith(self.doi_prefix) else None


ZENODO = Flavor("zenodo", doi_prefix="10.5281/zenodo.", native_by_default=False, page_caps=True, archive_cap=True,
                search_budget=True, relative_redirects=False, legacy_query_fields=True, sort_by_in_search=False,
                server_header="nginx")
INVENIO = Flavor("invenio", doi_prefix="10.81088/", native_by_default=True, page_caps=False, archive_cap=False,
                 search_budget=False, relative_redirects=True, legacy_query_fields=False, sort_by_in_search=True,
                 server_header="gunicorn")
BY_NAME: dict[str, Flavor] = {"zenodo": ZENODO, "invenio": INVENIO}

# The stock rate limits (invenio-app-rdm's RATELIMIT_GUEST_USER / RATELIMIT_AUTHENTICATED_USER), which a
# flavor="invenio" config takes wherever it was not told otherwise.
INVENIO_LIMITS = {"guest_per_minute": 500, "guest_per_hour": 5000, "auth_per_minute": 1000, "auth_per_hour": 25000}
