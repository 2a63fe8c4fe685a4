"""The fast path of the parser: msgspec decodes and type-checks a valid event in C.

It only decides "valid, and here are its columns" or "not valid"; the reason of an invalid record always comes
from the reference checks in ``parse``, which unit tests hold to the same verdicts on the conformance corpus
(``fixtures/conformance``) and on generated events. Kept in step with ``event.schema.json`` by hand, hence those
tests. Addresses are checked by ``parse`` after decoding, through a cache: the schema's IP pattern costs microseconds
per call, and the same addresses recur throughout a topic.

The details objects stay raw JSON until the event type is known; only that type's own one is decoded, so the
details objects of other types are ignored (as the contract says) at the cost of finding where they end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from streamguard.contracts.columns import USER_MAX_LENGTH
from streamguard.events.schema import EVENT_SCHEMA

_INT64_MAX = 2**63 - 1
IP_PATTERN: str = EVENT_SCHEMA["$defs"]["ip"]["pattern"]
IP_MAX_LENGTH: int = EVENT_SCHEMA["$defs"]["ip"]["maxLength"]

Count = Annotated[int, Meta(ge=0, le=_INT64_MAX)]
Port = Annotated[int, Meta(ge=0, le=65_535)]
NonEmpty = Annotated[str, Meta(min_length=1)]
Ip = Annotated[str, Meta(max_length=IP_MAX_LENGTH)]  # the pattern: parse._is_ip
User = Annotated[str, Meta(min_length=1, max_length=USER_MAX_LENGTH, pattern=r"^[^\x00-\x1f\x7f-\x9f]*\Z")]


class Metadata(msgspec.Struct):
    hostname: NonEmpty
    user_agent: str | None
    session_id: str | None
    geo_location: NonEmpty | None = None


class AuthDetails(msgspec.Struct):
    auth_type: NonEmpty
    failure_reason: str | None
    attempts_count: Count


class NetworkDetails(msgspec.Struct):
    protocol: str
    source_port: Port
    destination_port: Port
    bytes_sent: Count
    bytes_received: Count
    duration_ms: Count


class FileDetails(msgspec.Struct):
    file_path: NonEmpty
    operation: str
    file_size_bytes: Count


class ProcessDetails(msgspec.Struct):
    process_name: NonEmpty
    command_line: str
    user_privileges: str
    is_signed: bool


class DnsDetails(msgspec.Struct):
    query_name: NonEmpty
    query_type: NonEmpty
    response_code: NonEmpty


class Event(msgspec.Struct):
    event_id: Annotated[str, Meta(pattern=r"^evt_[0-9a-f]{32}\Z")]
    timestamp: Count
    event_type: Literal["auth_attempt", "network_connection", "file_access", "process_execution", "dns_query"]
    user: User
    source_ip: Ip
    destination_ip: Ip
    threat_score: Annotated[float, Meta(ge=0.0, le=1.0)]
    status: Literal["success", "failed", "blocked", "pending"]
    metadata: Metadata
    location: NonEmpty | None = None
    # Kept as raw JSON text (no work beyond finding where each ends): only the event type's own one is decoded.
    auth_details: msgspec.Raw = msgspec.Raw()
    network_details: msgspec.Raw = msgspec.Raw()
    file_details: msgspec.Raw = msgspec.Raw()
    process_details: msgspec.Raw = msgspec.Raw()
    dns_details: msgspec.Raw = msgspec.Raw()


Details = AuthDetails | NetworkDetails | FileDetails | ProcessDetails | DnsDetails

decode_event = msgspec.json.Decoder(Event).decode
DETAILS_DECODERS: dict[str, tuple[str, Callable[[msgspec.Raw], Details]]] = {
    "auth_attempt": ("auth_details", msgspec.json.Decoder(AuthDetails).decode),
    "network_connection": ("network_details", msgspec.json.Decoder(NetworkDetails).decode),
    "file_access": ("file_details", msgspec.json.Decoder(FileDetails).decode),
    "process_execution": ("process_details", msgspec.json.Decoder(ProcessDetails).decode),
    "dns_query": ("dns_details", msgspec.json.Decoder(DnsDetails).decode),
}
"""Event type -> (its details field, the decoder of that object)."""
