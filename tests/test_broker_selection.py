from __future__ import annotations

import pytest

from streamguard.errors import BrokerError
from streamguard.kafka.broker import ExternalBroker, broker_from_env, select_provider


def test_auto_prefers_external_then_container_then_local():
    assert select_provider({"STREAMGUARD_KAFKA_BOOTSTRAP": "h:9092"}, docker_probe=lambda: True) == "external"
    assert select_provider({}, docker_probe=lambda: True) == "container"
    assert select_provider({}, docker_probe=lambda: False) == "local"
    assert select_provider({"STREAMGUARD_KAFKA": "AUTO"}, docker_probe=lambda: False) == "local"


def test_explicit_choice_wins_and_unknown_is_an_error():
    assert select_provider({"STREAMGUARD_KAFKA": "local", "STREAMGUARD_KAFKA_BOOTSTRAP": "h:1"},
                           docker_probe=lambda: True) == "local"
    with pytest.raises(BrokerError, match="not one of"):
        select_provider({"STREAMGUARD_KAFKA": "zookeeper"})


def test_external_provider_uses_the_bootstrap_variable():
    provider = broker_from_env({"STREAMGUARD_KAFKA": "external", "STREAMGUARD_KAFKA_BOOTSTRAP": "10.1.2.3:9092"})
    assert isinstance(provider, ExternalBroker)
    assert provider.bootstrap == "10.1.2.3:9092"
    with pytest.raises(BrokerError, match="empty"):
        broker_from_env({"STREAMGUARD_KAFKA": "external"})


def test_external_provider_fails_fast_when_nothing_answers():
    from streamguard.errors import BrokerUnreachable
    from streamguard.kafka.local_broker import free_port

    with pytest.raises(BrokerUnreachable, match="within 2 s"):
        ExternalBroker(f"127.0.0.1:{free_port()}", connect_timeout_s=2).start()
