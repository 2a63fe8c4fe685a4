"""The fast path of the parser: msgspec decodes and type-checks a valid event in C.

It only decides "valid, and here are its columns" or "not valid"; the reason of an invalid record always comes
from the reference checks in ``parse``, which a unit test holds to the same verdicts on the conformance corpus and
on generated events. Kept in step with ``event.schema.json`` by hand, hence that test.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from streamguard.contracts.columns import USER_MAX_LENGTH

_INT64_MAX = 2**63 - 1

Count = Annotated[int, Meta(ge=0, le=_INT64_MAX)]
Port = Annotated[int, Meta(ge=0, le=65_535)]
NonEmpty = Annotated[str, Meta(min_length=1)]
Ip = Annotated[str, Meta(min_length=2, max_length=45)]
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
    auth_details: AuthDetails | None = None
    network_details: NetworkDetails | None = None
    file_details: FileDetails | None = None
    process_details: ProcessDetails | None = None
    dns_details: DnsDetails | None = None


decode_event = msgspec.json.Decoder(Event).decode
