"""The fast path of the parser: msgspec decodes and type-checks a valid event in C.

It only decides "valid, and here are its columns" or "not valid"; the reason of an invalid record always comes
from the reference checks in ``parse``, which unit tests hold to the same verdicts on the conformance corpus
(``fixtures/conformance``) and on generated events. Kept in step with ``event.schema.json`` by hand (the IP and
user rules are read from it), hence those tests.

The event type is the tag of a union: each type's struct declares only its own details object, so msgspec skips
the details objects of other types as it skips any unknown field (the contract ignores them).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

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
Ip = Annotated[str, Meta(max_length=IP_MAX_LENGTH, pattern=IP_PATTERN)]
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


class Event(msgspec.Struct, tag_field="event_type"):
    event_id: Annotated[str, Meta(pattern=r"^evt_[0-9a-f]{32}\Z")]
    timestamp: Count
    user: User
    source_ip: Ip
    destination_ip: Ip
    threat_score: Annotated[float, Meta(ge=0.0, le=1.0)]
    status: Annotated[str, Meta(pattern=r"^(?:success|failed|blocked|pending)\Z")]
    metadata: Metadata
    location: NonEmpty | None = None

    event_type: ClassVar[str]
    details: ClassVar[str]


class AuthAttempt(Event, tag="auth_attempt"):
    auth_details: AuthDetails | None = None
    event_type = "auth_attempt"
    details = "auth_details"


class NetworkConnection(Event, tag="network_connection"):
    network_details: NetworkDetails | None = None
    event_type = "network_connection"
    details = "network_details"


class FileAccess(Event, tag="file_access"):
    file_details: FileDetails | None = None
    event_type = "file_access"
    details = "file_details"


class ProcessExecution(Event, tag="process_execution"):
    process_details: ProcessDetails | None = None
    event_type = "process_execution"
    details = "process_details"


class DnsQuery(Event, tag="dns_query"):
    dns_details: DnsDetails | None = None
    event_type = "dns_query"
    details = "dns_details"


AnyEvent = AuthAttempt | NetworkConnection | FileAccess | ProcessExecution | DnsQuery
decode_event = msgspec.json.Decoder(AnyEvent).decode
