"""Kafka client properties: parsing, precedence, each client's share, and secrets that never show."""

from __future__ import annotations

import json
import logging

import pytest

from streamguard.errors import ConfigError
from streamguard.kafka.admin import Watermarks
from streamguard.kafka.plan import PartitionRange, ReadPlan
from streamguard.kafka.properties import (
    ENV_PROPERTIES,
    KafkaProperties,
    is_secret,
    parse_property,
    parse_property_list,
    resolve_kafka_properties,
)
from streamguard.kafka.read import FETCH_MAX_WAIT_MS, kafka_options

SASL = ["security.protocol=SASL_SSL", "sasl.mechanism=PLAIN", "sasl.username=alice", "sasl.password=s3cr=t"]


def test_a_pair_splits_at_the_first_equals_sign():
    assert parse_property("sasl.password=a=b=c") == ("sasl.password", "a=b=c")
    assert parse_property(" linger.ms = 5 ") == ("linger.ms", "5")
    for bad in ("no-equals-sign", "=value", "bad key=1"):
        with pytest.raises(ConfigError):
            parse_property(bad)


def test_a_pair_without_equals_is_not_echoed():
    # "--kafka-property hunter2" (the value typed without its key) must not print the value.
    with pytest.raises(ConfigError) as raised:
        parse_property("hunter2")
    assert "hunter2" not in str(raised.value)


def test_environment_list_by_newline_or_comma():
    assert parse_property_list("a.b=1,c.d=2") == [("a.b", "1"), ("c.d", "2")]
    assert parse_property_list("ssl.cipher.suites=A,B,security.protocol=SSL") == [
        ("ssl.cipher.suites", "A,B"), ("security.protocol", "SSL")]
    assert parse_property_list("a.b=x,y\n# comment\n\nc.d=2\n") == [("a.b", "x,y"), ("c.d", "2")]
    assert parse_property_list("") == []


def test_precedence_is_flags_then_environment_then_file():
    file_section = {"client.id": "file", "linger.ms": 1, "sasl": {"mechanism": "PLAIN"}, "enable.idempotence": True}
    env = {ENV_PROPERTIES: "client.id=env,socket.timeout.ms=7"}
    props = resolve_kafka_properties(["client.id=flag"], env, file_section)
    assert props == {"client.id": "flag", "socket.timeout.ms": "7", "linger.ms": "1", "sasl.mechanism": "PLAIN",
                     "enable.idempotence": "true"}
    assert resolve_kafka_properties(None, {}, None) == {}


def test_properties_streamguard_sets_itself_are_refused():
    for key in ("bootstrap.servers", "isolation.level", "group.id", "enable.auto.commit", "java.group.id"):
        with pytest.raises(ConfigError, match="set by StreamGuard"):
            resolve_kafka_properties([f"{key}=x"], {}, None)
    with pytest.raises(ConfigError):
        resolve_kafka_properties([], {}, {"sasl": ["not", "a", "value"]})
    with pytest.raises(ConfigError):
        resolve_kafka_properties([], {}, ["a=1"])  # type: ignore[arg-type]


def test_secrets_are_masked_in_repr_str_and_masked():
    props = resolve_kafka_properties([*SASL, "ssl.key.password=kp", "ssl.keystore.password=ksp",
                                      "sasl.oauthbearer.client.secret=oc", "java.sasl.jaas.config=x password=jp"],
                                     {}, None)
    shown = repr(props) + str(props) + json.dumps(props.masked()) + f"{props}"
    for secret in ("s3cr=t", "kp", "ksp", "oc", "jp"):
        assert f"'{secret}'" not in shown and f'"{secret}"' not in shown
    assert props.masked()["sasl.username"] == "alice" and props.masked()["sasl.password"] == "***"
    assert all(is_secret(key) for key in ("sasl.password", "ssl.key.password", "ssl.truststore.password",
                                          "sasl.oauthbearer.client.secret", "sasl.jaas.config", "ssl.key.pem"))
    assert not any(is_secret(key) for key in ("sasl.username", "security.protocol", "ssl.ca.location"))


def test_secrets_do_not_reach_a_log_line(caplog):
    props = resolve_kafka_properties(SASL, {}, None)
    with caplog.at_level(logging.INFO):
        logging.getLogger("streamguard.test").info("client properties: %s", props)
    assert "s3cr=t" not in caplog.text and "***" in caplog.text


def test_librdkafka_gets_its_names_and_never_java_only_ones():
    props = resolve_kafka_properties([*SASL, "ssl.truststore.location=/t.jks", "java.sasl.login.class=X",
                                      "librdkafka.ssl.ca.location=/ca.pem", "fetch.wait.max.ms=10"], {}, None)
    rd = props.for_librdkafka()
    assert rd == {"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN", "sasl.username": "alice",
                  "sasl.password": "s3cr=t", "ssl.ca.location": "/ca.pem", "fetch.wait.max.ms": "10"}


def test_java_gets_a_jaas_config_from_username_and_password():
    java = resolve_kafka_properties([*SASL, 'sasl.username=al"ice'], {}, None).for_java()
    assert java["sasl.mechanism"] == "PLAIN" and java["security.protocol"] == "SASL_SSL"
    assert java["sasl.jaas.config"] == ('org.apache.kafka.common.security.plain.PlainLoginModule required '
                                        'username="al\\"ice" password="s3cr=t";')
    assert "sasl.username" not in java and "sasl.password" not in java
    scram = resolve_kafka_properties(["sasl.mechanisms=SCRAM-SHA-512", "sasl.username=u", "sasl.password=p"],
                                     {}, None).for_java()
    assert scram["sasl.jaas.config"].startswith("org.apache.kafka.common.security.scram.ScramLoginModule")
    given = resolve_kafka_properties([*SASL, "sasl.jaas.config=mine"], {}, None).for_java()
    assert given["sasl.jaas.config"] == "mine"


def test_spark_options_carry_the_properties_with_the_kafka_prefix():
    plan = ReadPlan(topic="t", strategy="bounded", isolation_level="read_committed", start="earliest", end=None,
                    max_events=5, watermarks=(Watermarks(0, 0, 10),), ranges=(PartitionRange(0, 0, 5),))
    options = kafka_options("b:9092", plan, properties=resolve_kafka_properties(
        [*SASL, "request.timeout.ms=1234"], {}, None))
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "PLAIN"
    assert "PlainLoginModule" in options["kafka.sasl.jaas.config"]
    assert options["kafka.request.timeout.ms"] == "1234"  # a tuning property overrides StreamGuard's default
    assert options["kafka.bootstrap.servers"] == "b:9092"
    assert not any(key.startswith("kafka.sasl.password") for key in options)


def test_equality_and_conversion():
    props = KafkaProperties({"linger.ms": 5, "enable.idempotence": False})
    assert props == {"linger.ms": "5", "enable.idempotence": "false"}
    assert KafkaProperties.of(props) is props and KafkaProperties.of(None) == {}
    assert props.merged({"linger.ms": "9"})["linger.ms"] == "9"


def test_spark_reads_with_a_short_fetch_wait_unless_a_property_sets_one():
    plan = ReadPlan(topic="t", strategy="bounded", isolation_level="read_committed", start="earliest", end=None,
                    max_events=5, watermarks=(Watermarks(0, 0, 10),), ranges=(PartitionRange(0, 0, 5),))
    assert kafka_options("b:9092", plan)["kafka.fetch.max.wait.ms"] == str(FETCH_MAX_WAIT_MS)
    chosen = resolve_kafka_properties(["java.fetch.max.wait.ms=250"], {}, None)
    assert kafka_options("b:9092", plan, properties=chosen)["kafka.fetch.max.wait.ms"] == "250"
