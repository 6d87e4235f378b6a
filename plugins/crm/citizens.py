"""Citizens' records for staff, one import for the pages (``from . import citizens``); the rules live in:

- :mod:`.identity`: folded names, normalised phones, records in use, the survivor of merges;
- :mod:`.intake`: the citizen of a new case (matched by NIF, else e-mail, else phone; empty fields filled);
- :mod:`.citizen_search`: the staff's search (NIF, phone, e-mail, name words);
- :mod:`.duplicates`: records that may be the same person;
- :mod:`.citizen_records`: staff edits, consents, the audited view, the shared labels and :class:`InvalidInput`;
- :mod:`.merges`: merging citizens and duplicate cases;
- :mod:`.interactions`: contacts registered by staff, their files, a case opened from one;
- :mod:`.timeline`: the 360° timeline.
"""

from __future__ import annotations

from .citizen_records import (
    CHANNEL_LABELS,
    CONSENT_PURPOSES,
    DIRECTION_LABELS,
    LISBON,
    CitizenInput,
    InvalidInput,
    create_citizen,
    latest_consents,
    log_view,
    record_consent,
    update_citizen,
)
from .citizen_search import SearchResult, exact_match, search_citizens
from .duplicates import (
    IDENTIFYING,
    NAME_SIMILARITY,
    SAME_EMAIL,
    SAME_NIF,
    SAME_PHONE,
    SIMILAR_NAME,
    Candidate,
    duplicate_candidates,
    name_similarity,
)
from .identity import active_citizens, fold_name, normalize_phone, phone_variants, survivor_of
from .intake import fill_empty_fields, find_matching_citizen, intake_citizen
from .interactions import (
    SERVICE_CODE_RE,
    STAFF_CHANNELS,
    InteractionInput,
    open_case_from_interaction,
    register_interaction,
    store_interaction_file,
)
from .merges import merge_case, merge_citizens
from .timeline import TIMELINE_LIMIT, TimelineEntry, local_time, timeline

__all__ = [
    "CHANNEL_LABELS",
    "CONSENT_PURPOSES",
    "DIRECTION_LABELS",
    "IDENTIFYING",
    "LISBON",
    "NAME_SIMILARITY",
    "SAME_EMAIL",
    "SAME_NIF",
    "SAME_PHONE",
    "SERVICE_CODE_RE",
    "SIMILAR_NAME",
    "STAFF_CHANNELS",
    "TIMELINE_LIMIT",
    "Candidate",
    "CitizenInput",
    "InteractionInput",
    "InvalidInput",
    "SearchResult",
    "TimelineEntry",
    "active_citizens",
    "create_citizen",
    "duplicate_candidates",
    "exact_match",
    "fill_empty_fields",
    "find_matching_citizen",
    "fold_name",
    "intake_citizen",
    "latest_consents",
    "local_time",
    "log_view",
    "merge_case",
    "merge_citizens",
    "name_similarity",
    "normalize_phone",
    "open_case_from_interaction",
    "phone_variants",
    "record_consent",
    "register_interaction",
    "search_citizens",
    "store_interaction_file",
    "survivor_of",
    "timeline",
    "update_citizen",
]
