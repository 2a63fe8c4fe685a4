"""Kafka client properties for secured and tuned clusters (SASL, SSL, timeouts), with their secrets masked.

One set of ``KEY=VALUE`` properties reaches every Kafka client StreamGuard opens: the admin client that plans,
the embedded engine's librdkafka consumer, and Spark's Kafka source (as its ``kafka.``-prefixed options).

    >>> props = resolve_kafka_properties(["security.protocol=SASL_PLAINTEXT", "sasl.mechanism=PLAIN",
    ...                                   "sasl.username=alice", "sasl.password=secret"], os.environ, None)
    >>> props
    KafkaProperties({'sasl.mechanism': 'PLAIN', 'sasl.password': '***', 'sasl.username': 'alice', ...})
    >>> props.for_librdkafka()["sasl.password"]
    'secret'
    >>> props.for_java()["sasl.jaas.config"]       # derived for Spark's Java client from username and password
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="secret";'

Sources, highest precedence first: ``--kafka-property KEY=VALUE`` flags (repeatable), the environment variable
``STREAMGUARD_KAFKA_PROPERTIES`` (``KEY=VALUE`` pairs separated by newlines, or by commas when the text has no
newline; a comma-separated piece without ``=`` continues the previous value, so ``ssl.cipher.suites=A,B`` works),
and the ``kafka:`` section of the config file (a mapping; nested keys are joined with dots, so
``sasl: {mechanism: PLAIN}`` is ``sasl.mechanism=PLAIN``).

The two client libraries name a few properties differently. A property goes to both unless it is one client's
only (``LIBRDKAFKA_ONLY``, ``JAVA_ONLY``); a ``librdkafka.`` or ``java.`` prefix sends it to that client alone.
``sasl.mechanisms`` (librdkafka) and ``sasl.mechanism`` (Java) are the same setting; SASL/PLAIN and SCRAM
credentials given as ``sasl.username``/``sasl.password`` become Java's ``sasl.jaas.config`` unless one is given.

Values of secret properties (``SECRET_PATTERN``: passwords, secrets, JAAS configs, private keys) never appear in a
repr, a log line or the report: ``masked()`` is the form to show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from streamguard.errors import ConfigError

ENV_PROPERTIES = "STREAMGUARD_KAFKA_PROPERTIES"
MASK = "***"
SECRET_PATTERN = re.compile(r"password|secret|jaas|credential|private|ssl\.key\.pem|sasl\.oauthbearer\.config",
                            re.IGNORECASE)
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LIBRDKAFKA_PREFIX, _JAVA_PREFIX = "librdkafka.", "java."

# Set from the run's own settings, or what a bounded read depends on: a property cannot override them.
RESERVED = frozenset({
    "bootstrap.servers", "isolation.level", "group.id", "enable.auto.commit", "enable.auto.offset.store",
    "auto.offset.reset", "enable.partition.eof", "key.deserializer", "value.deserializer", "interceptor.classes",
    "transactional.id",
})
LIBRDKAFKA_ONLY = frozenset({
    "sasl.username", "sasl.password", "sasl.mechanisms", "sasl.kerberos.keytab", "sasl.kerberos.principal",
    "sasl.kerberos.kinit.cmd", "sasl.oauthbearer.method", "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret", "sasl.oauthbearer.scope", "sasl.oauthbearer.extensions",
    "sasl.oauthbearer.config", "enable.sasl.oauthbearer.unsecure.jwt", "ssl.ca.location", "ssl.ca.pem",
    "ssl.ca.certificate.stores", "ssl.certificate.location", "ssl.certificate.pem", "ssl.key.location",
    "ssl.key.pem", "ssl.crl.location", "ssl.engine.location", "ssl.providers", "ssl.curves.list",
    "ssl.sigalgs.list", "enable.ssl.certificate.verification", "debug", "log_level", "socket.keepalive.enable",
    "socket.nagle.disable", "topic.metadata.refresh.interval.ms",
})
JAVA_ONLY = frozenset({
    "sasl.jaas.config", "sasl.login.callback.handler.class", "sasl.client.callback.handler.class",
    "sasl.login.class", "ssl.truststore.location", "ssl.truststore.password", "ssl.truststore.type",
    "ssl.truststore.certificates", "ssl.keystore.type", "ssl.keystore.key", "ssl.keystore.certificate.chain",
    "ssl.protocol", "ssl.enabled.protocols", "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation", "ssl.engine.factory.class", "sasl.mechanism",
})
_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def is_secret(key: str) -> bool:
    """True for a property whose value must never be shown (``SECRET_PATTERN``)."""
    return bool(SECRET_PATTERN.search(key))


class KafkaProperties(Mapping[str, str]):
    """Client properties as given (immutable); ``for_librdkafka()``/``for_java()`` give each client its share.

    Equal to a plain dict with the same items; its repr masks secret values.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        checked: dict[str, str] = {}
        for key, value in pairs:
            name = _check_key(str(key))
            checked[name] = _text(name, value)
        self._items = dict(sorted(checked.items()))

    @classmethod
    def of(cls, value: KafkaProperties | Mapping[str, Any] | None) -> KafkaProperties:
        """``value`` as KafkaProperties (``None`` is none)."""
        if isinstance(value, KafkaProperties):
            return value
        return cls(value or {})

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KafkaProperties):
            return self._items == other._items
        return isinstance(other, Mapping) and self._items == dict(other)

    def __repr__(self) -> str:
        return f"KafkaProperties({self.masked()!r})"

    __str__ = __repr__

    def masked(self) -> dict[str, str]:
        """The properties to show: every secret value replaced by ``***``."""
        return {key: MASK if is_secret(key) else value for key, value in self._items.items()}

    def merged(self, higher: Mapping[str, Any]) -> KafkaProperties:
        """These properties with ``higher``'s on top."""
        return KafkaProperties({**self._items, **KafkaProperties.of(higher)._items})

    def for_librdkafka(self) -> dict[str, str]:
        """The properties for confluent-kafka / librdkafka clients (admin client, embedded consumer)."""
        return self._for_client(own=_LIBRDKAFKA_PREFIX, other=_JAVA_PREFIX, others_only=JAVA_ONLY,
                                renamed=("sasl.mechanism", "sasl.mechanisms"))

    def for_java(self) -> dict[str, str]:
        """The properties for the Java Kafka client (Spark's Kafka source prefixes each with ``kafka.``)."""
        out = self._for_client(own=_JAVA_PREFIX, other=_LIBRDKAFKA_PREFIX, others_only=LIBRDKAFKA_ONLY,
                               renamed=("sasl.mechanisms", "sasl.mechanism"))
        jaas = _jaas_config(self._items, out.get("sasl.mechanism", "GSSAPI"))
        if jaas is not None and "sasl.jaas.config" not in out:
            out["sasl.jaas.config"] = jaas
        return out

    def _for_client(self, *, own: str, other: str, others_only: frozenset[str] | set[str],
                    renamed: tuple[str, str]) -> dict[str, str]:
        """One client's share: its own prefixed keys unprefixed, the other client's keys left out, and the one
        setting the two clients spell differently given this client's spelling (an explicit one wins)."""
        foreign_name, own_name = renamed
        out: dict[str, str] = {}
        for key, value in self._items.items():
            if key.startswith(other):
                continue
            if key.startswith(own):
                out[key.removeprefix(own)] = value
            elif key == foreign_name:
                out.setdefault(own_name, value)
            elif key not in others_only:
                out[key] = value
        return out

    def for_spark(self) -> dict[str, str]:
        """``for_java()`` as options of Spark's Kafka source (``kafka.<key>``)."""
        return {f"kafka.{key}": value for key, value in self.for_java().items()}


def _check_key(key: str) -> str:
    name = key.strip()
    if not _KEY.fullmatch(name):
        raise ConfigError(f"{name!r} is not a Kafka client property name")
    plain = name.removeprefix(_LIBRDKAFKA_PREFIX).removeprefix(_JAVA_PREFIX)
    if plain in RESERVED:
        raise ConfigError(
            f"Kafka property {plain!r} is set by StreamGuard itself"
            + (" (use --bootstrap)" if plain == "bootstrap.servers"
               else " (use --isolation-level)" if plain == "isolation.level" else "")
        )
    return name


def _text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    shown = MASK if is_secret(key) else repr(value)
    raise ConfigError(f"Kafka property {key!r} must be a string, number or boolean, not {shown}")


def _jaas_config(items: Mapping[str, str], mechanism: str) -> str | None:
    module = _JAAS_MODULES.get(mechanism.upper())
    username, password = items.get("sasl.username"), items.get("sasl.password")
    if module is None or username is None or password is None:
        return None
    return f'{module} required username="{_jaas_quote(username)}" password="{_jaas_quote(password)}";'


def _jaas_quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def parse_property(text: str) -> tuple[str, str]:
    """``("key", "value")`` from ``KEY=VALUE`` (the value may itself contain ``=``); ConfigError otherwise."""
    key, sep, value = text.partition("=")
    if not sep:
        # The text may be a secret typed without its key: do not echo it.
        raise ConfigError("a Kafka property must be KEY=VALUE; got text without '='")
    return _check_key(key), value.strip()


def parse_property_list(text: str) -> list[tuple[str, str]]:
    """Pairs from the environment variable's text: newline-separated, or comma-separated without a newline.

    In the comma form, a piece without ``=`` belongs to the previous value (``ssl.cipher.suites=A,B``).
    """
    if "\n" in text:
        pieces = [line.strip() for line in text.splitlines()]
        return [parse_property(piece) for piece in pieces if piece and not piece.startswith("#")]
    joined: list[str] = []
    for piece in text.split(","):
        if "=" not in piece and joined:
            joined[-1] += "," + piece
        elif piece.strip():
            joined.append(piece.strip())
    return [parse_property(piece) for piece in joined]


def _flatten(section: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in section.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def resolve_kafka_properties(
    flags: Iterable[str] | None, env: Mapping[str, str], file_section: Mapping[str, Any] | None
) -> KafkaProperties:
    """Kafka client properties from ``--kafka-property`` flags > ``STREAMGUARD_KAFKA_PROPERTIES`` > the config
    file's ``kafka:`` section. Raises ConfigError (exit 2) for a malformed pair or a reserved property."""
    if file_section is not None and not isinstance(file_section, Mapping):
        raise ConfigError("the config file's kafka: section must be a mapping of client properties")
    properties = KafkaProperties(_flatten(file_section or {}))
    properties = properties.merged(dict(parse_property_list(env.get(ENV_PROPERTIES, ""))))
    return properties.merged(dict(parse_property(flag) for flag in flags or ()))
