"""A SASL/PLAIN listener on the local broker: the right credentials plan and read with both engines; a wrong
password fails fast with an authentication error of its own (exit 13), on the planner and on each reader."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from e2e.conftest import unique_topic
from streamguard.engines.embedded import EmbeddedEngine
from streamguard.engines.spark import SparkEngine
from streamguard.errors import EXIT_CODES, BrokerAuthenticationFailed, BrokerError
from streamguard.kafka import daemon
from streamguard.kafka.admin import ensure_topic
from streamguard.kafka.local_broker import LocalBroker
from streamguard.kafka.plan import plan_read
from streamguard.kafka.properties import KafkaProperties

USERS = {"alice": 'se"cr=t\\x'}  # quotes, '=' and a backslash survive the JAAS and properties quoting
RECORDS = {0: 40, 1: 25}


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[LocalBroker]:
    with LocalBroker(sasl_users=USERS) as broker:
        yield broker


@pytest.fixture(scope="module")
def alice(sasl_broker: LocalBroker) -> KafkaProperties:
    return sasl_broker.client_properties("alice")


@pytest.fixture(scope="module")
def wrong(alice: KafkaProperties) -> KafkaProperties:
    return alice.merged({"sasl.password": "not-the-password"})


@pytest.fixture(scope="module")
def secured_topic(sasl_broker: LocalBroker, alice: KafkaProperties) -> str:
    topic = unique_topic("sasl")
    ensure_topic(sasl_broker.bootstrap, topic, len(RECORDS), properties=alice)
    producer = Producer({"bootstrap.servers": sasl_broker.bootstrap, "log_level": 0, **alice.for_librdkafka()})
    for partition, count in RECORDS.items():
        for i in range(count):
            producer.produce(topic, json.dumps({"p": partition, "i": i}).encode(), partition=partition)
    assert producer.flush(30) == 0
    return topic


def test_the_listener_refuses_a_client_without_credentials(sasl_broker, secured_topic):
    # A plain client cannot read: the listener speaks SASL only.
    with pytest.raises(Exception):  # noqa: B017, PT011 - unreachable or refused, both are a failure here
        plan_read(sasl_broker.bootstrap, secured_topic)


def test_the_right_credentials_plan_and_read_with_both_engines(sasl_broker, secured_topic, alice, spark):
    plan = plan_read(sasl_broker.bootstrap, secured_topic, max_events=50, properties=alice)
    assert plan.planned_records == 50
    for engine in (EmbeddedEngine(bootstrap=sasl_broker.bootstrap, kafka_properties=alice),
                   SparkEngine(bootstrap=sasl_broker.bootstrap, master="local[2]", session=spark,
                               kafka_properties=alice)):
        engine.start()
        try:
            with engine.errors("kafka_read"):
                counts = engine.read(plan)
            assert counts.records_read == 50, engine.name
        finally:
            engine.close()


def test_a_wrong_password_fails_the_plan_fast_with_its_own_error(sasl_broker, secured_topic, wrong):
    # The planner's requests time out after 10 s as BrokerUnreachable; getting the authentication error instead
    # shows the refusal was recognised as such rather than waited out (no timing assert outside bench/).
    with pytest.raises(BrokerAuthenticationFailed) as refused:
        plan_read(sasl_broker.bootstrap, secured_topic, max_events=10, properties=wrong)
    assert refused.value.exit_code == 13 == EXIT_CODES["BrokerAuthenticationFailed"]
    assert "not-the-password" not in str(refused.value)


@pytest.mark.parametrize("engine_name", ["embedded", "spark"])
def test_a_wrong_password_fails_each_reader_with_the_same_error(sasl_broker, secured_topic, alice, wrong,
                                                                engine_name, request):
    plan = plan_read(sasl_broker.bootstrap, secured_topic, max_events=10, properties=alice)
    if engine_name == "embedded":
        engine = EmbeddedEngine(bootstrap=sasl_broker.bootstrap, kafka_properties=wrong)
    else:
        engine = SparkEngine(bootstrap=sasl_broker.bootstrap, master="local[2]",
                             session=request.getfixturevalue("spark"), kafka_properties=wrong)
    engine.start()
    try:
        with pytest.raises(BrokerAuthenticationFailed), engine.errors("kafka_read"):
            engine.read(plan)
    finally:
        engine.close()


def test_the_broker_config_holding_passwords_is_private(sasl_broker):
    mode = stat.S_IMODE(os.stat(sasl_broker.data_dir / "server.properties").st_mode)
    assert mode == 0o600


def test_the_background_broker_starts_with_sasl_and_records_no_password(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGUARD_STATE_DIR", str(tmp_path))
    try:
        state = daemon.start(sasl_users={"bob": "b0b-pass"})
        assert (state.security_protocol, state.sasl_users) == ("SASL_PLAINTEXT", ("bob",))
        assert daemon.status().running, "status logs in with the broker's own account"
        assert "b0b-pass" not in (tmp_path / "kafka" / "state.json").read_text()
        props = state.client_properties("bob", "b0b-pass")
        ensure_topic(state.bootstrap, "bobs-topic", 1, properties=props)
        assert plan_read(state.bootstrap, "bobs-topic", properties=props).available_records == 0
        with pytest.raises(BrokerError, match="already runs"):
            daemon.start()
    finally:
        daemon.stop()
    assert not (tmp_path / "kafka" / "broker-account.json").exists()
