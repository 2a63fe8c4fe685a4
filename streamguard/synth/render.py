"""Columns to JSON text, fast: precomputed JSON fragments looked up by index, joined with f-strings.

JSON object keys are unordered, so the renderer orders them to make long constant runs, and precomputes each
run once per plan as a numpy object array of ready-to-paste fragments (quotes and escapes included):

    {"event_id":"evt_…","timestamp":…,
     "threat_score":…,"status":…,                                  <- score × status
     "user":…,"metadata":{"hostname":…,"user_agent":…,"session_id":   <- user × has user agent
     …,                                                           <- session
     "geo_location":…},"source_ip":…,                              <- source address (it implies the city)
     "destination_ip":…,"event_type":…,"<type>_details":{…}}       <- server (it implies the type) + details

so rendering a chunk is a fancy-index per fragment plus one f-string per event, with no ``json.dumps``. The
wire variants (flat ``location``, a repeated key) are patched into the few events that use them. Every
rendered event validates against ``event.schema.json`` (the tests check).

    tables = RenderTables(users, ips, sessions)
    texts = render_events(tables, cols, event_ids, session)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamguard.events.schema import DETAILS_FIELD, EVENT_TYPES, STATUSES
from streamguard.synth import catalog
from streamguard.synth.columns import FLAT_LOCATION, REPEATED_KEY, UNIQUE_IP, EventColumns
from streamguard.synth.users import UserProfile

AUTH, NETWORK, FILE, PROCESS, DNS = range(5)

_HOP_FIRST_OCTETS = (45, 46, 62, 77, 78, 85, 91, 94, 95, 185)


@dataclass(frozen=True, slots=True)
class IpEntry:
    """An address of the plan's IP table: a source (with its city) or a destination server (with its type)."""

    address: str
    city: int = -1
    event_type: int = -1


def _objects(items: Sequence[str]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def _lit(value: object) -> str:
    return json.dumps(value)


def unique_ip(index: int) -> str:
    """A public-looking IPv4 address that no other stream position below 167 million gets."""
    # Multiplying by an odd constant is a bijection modulo 2**24, so the low 24 bits never repeat within a /8.
    low = ((index + 1) * 2_654_435_761) % (1 << 24)
    first = _HOP_FIRST_OCTETS[(index >> 24) % len(_HOP_FIRST_OCTETS)]
    return f"{first}.{low >> 16}.{(low >> 8) & 255}.{low & 255}"


class RenderTables:
    """Fragments for every combination of values the columns can index; build once per plan."""

    def __init__(self, users: Sequence[UserProfile], ips: Sequence[IpEntry], sessions: Sequence[str]) -> None:
        self.users = len(users)
        self.score_status = _objects([
            f'"threat_score":{k / 1000!r},"status":{_lit(s)},' for k in range(1001) for s in STATUSES
        ])
        self.user_meta = _objects([
            f'"user":{_lit(u.name)},"metadata":{{"hostname":{_lit(u.hostname)},"user_agent":{ua},"session_id":'
            for u in users for ua in ("null", _lit(u.user_agent))
        ])
        self.session = _objects([_lit(s) for s in sessions] + ["null"])
        self.geo_source = _objects([
            f',"geo_location":{_lit(catalog.CITIES[ip.city])}}},"source_ip":{_lit(ip.address)},'
            if ip.city >= 0 else ""
            for ip in ips
        ])
        self.geo_fragment = [f',"geo_location":{_lit(c)}}}' for c in catalog.CITIES]
        self.location_field = [f'"location":{_lit(c)},' for c in catalog.CITIES]
        self.status_field = [f'"status":{_lit(s)},' for s in STATUSES]
        self.destination_type = _objects([
            f'"destination_ip":{_lit(ip.address)},"event_type":{_lit(EVENT_TYPES[ip.event_type])},'
            f'"{DETAILS_FIELD[EVENT_TYPES[ip.event_type]]}":' if ip.event_type >= 0 else ""
            for ip in ips
        ])
        self.auth = _objects([
            f'{{"auth_type":{_lit(a)},"failure_reason":{r},"attempts_count":'
            for a in catalog.AUTH_TYPES for r in [_lit(f) for f in catalog.FAILURE_REASONS] + ["null"]
        ])
        self.network = _objects([
            f'{{"protocol":{_lit(p)},"destination_port":{port},"source_port":'
            for p in catalog.PROTOCOLS for port in catalog.DESTINATION_PORTS
        ])
        self.file = _objects([
            f'{{"file_path":{_lit(p)},"operation":{_lit(o)},"file_size_bytes":'
            for p in catalog.FILE_PATHS for o in catalog.FILE_OPERATIONS
        ])
        self.process = _objects([
            f'{{"process_name":{_lit(n)},"command_line":{_lit(c)},"user_privileges":{_lit(p)},'
            f'"is_signed":{s}}}'
            for n, c in catalog.PROCESSES for p in catalog.PRIVILEGES for s in ("false", "true")
        ])
        self.dns = _objects([
            f'{{"query_name":{_lit(q)},"query_type":{_lit(t)},"response_code":{_lit(r)}}}'
            for q in catalog.DOMAINS for t in catalog.QUERY_TYPES for r in catalog.RESPONSE_CODES
        ])
        self.user_key = np.array([u.name.encode() for u in users], dtype=object)


def _combo(*pairs: tuple[np.ndarray, int]) -> np.ndarray:
    """Row-major index into a table of all combinations: pairs of (column, number of values)."""
    index = np.zeros(pairs[0][0].size, dtype=np.int64)
    for column, size in pairs:
        index = index * size + column
    return index


def _details(t: RenderTables, c: EventColumns) -> np.ndarray:
    """Destination address, event type and details object of every event."""
    out = np.empty(c.event_type.size, dtype=object)
    head = t.destination_type[c.destination_ip]
    et = c.event_type

    i = np.flatnonzero(et == AUTH)
    reasons = len(catalog.FAILURE_REASONS) + 1
    auth = t.auth[_combo((c.auth_type[i], len(catalog.AUTH_TYPES)), (c.failure_reason[i] % reasons, reasons))]
    out[i] = _objects([
        f"{h}{a}{n}}}"
        for h, a, n in zip(head[i].tolist(), auth.tolist(), c.attempts[i].tolist(), strict=True)
    ])
    i = np.flatnonzero(et == NETWORK)
    ports = len(catalog.DESTINATION_PORTS)
    network = t.network[_combo((c.protocol[i], len(catalog.PROTOCOLS)), (c.destination_port[i], ports))]
    out[i] = _objects([
        f'{h}{p}{sp},"bytes_sent":{bs},"bytes_received":{br},"duration_ms":{d}}}'
        for h, p, sp, bs, br, d in zip(
            head[i].tolist(), network.tolist(), c.source_port[i].tolist(), c.bytes_sent[i].tolist(),
            c.bytes_received[i].tolist(), c.duration_ms[i].tolist(), strict=True,
        )
    ])
    i = np.flatnonzero(et == FILE)
    ops = len(catalog.FILE_OPERATIONS)
    files = t.file[_combo((c.file_path[i], len(catalog.FILE_PATHS)), (c.file_operation[i], ops))]
    out[i] = _objects([
        f"{h}{f}{s}}}"
        for h, f, s in zip(head[i].tolist(), files.tolist(), c.file_size[i].tolist(), strict=True)
    ])
    i = np.flatnonzero(et == PROCESS)
    out[i] = head[i] + t.process[_combo(
        (c.process[i], len(catalog.PROCESSES)), (c.privileges[i], len(catalog.PRIVILEGES)),
        (c.signed[i].astype(np.int64), 2),
    )]
    i = np.flatnonzero(et == DNS)
    out[i] = head[i] + t.dns[_combo(
        (c.query_name[i], len(catalog.DOMAINS)), (c.query_type[i], len(catalog.QUERY_TYPES)),
        (c.response_code[i], len(catalog.RESPONSE_CODES)),
    )]
    return out


def render_events(t: RenderTables, c: EventColumns, event_ids: list[str], session: np.ndarray) -> list[str]:
    """One compact JSON text per event, in column order. ``session`` indexes ``t.session`` (-1 for null)."""
    geo_source = t.geo_source[np.maximum(c.source_ip, 0)]
    hop = np.flatnonzero(c.source_ip == UNIQUE_IP)
    geo_source[hop] = [
        f'{t.geo_fragment[city]},"source_ip":"{unique_ip(g)}",'
        for city, g in zip(c.city[hop].tolist(), c.index[hop].tolist(), strict=True)
    ]
    has_user_agent = (c.event_type != FILE) & (c.event_type != PROCESS)
    texts = [
        f'{{"event_id":"evt_{e}","timestamp":{ts},{ss}{um}{se}{gs}{d}}}'
        for e, ts, ss, um, se, gs, d in zip(
            event_ids, c.timestamp.tolist(),
            t.score_status[_combo((c.score_milli, 1001), (c.status, len(STATUSES)))].tolist(),
            t.user_meta[_combo((c.user, t.users), (has_user_agent.astype(np.int64), 2))].tolist(),
            t.session[session].tolist(), geo_source.tolist(), _details(t, c).tolist(), strict=True,
        )
    ]
    for i in np.flatnonzero(c.variant == FLAT_LOCATION).tolist():
        city = int(c.city[i])
        texts[i] = "{" + t.location_field[city] + texts[i][1:].replace(t.geo_fragment[city], "}", 1)
    # A stale first "status" that the real one, later in the object, overrides: the last key wins.
    for i in np.flatnonzero(c.variant == REPEATED_KEY).tolist():
        texts[i] = "{" + t.status_field[(int(c.status[i]) + 1) % len(STATUSES)] + texts[i][1:]
    return texts
