"""Where the assistant gets its facts: the serving API, over HTTP or in process.

Both sources answer with the API's own response models (snake_case fields, as served), so the assistant reads
the same figures whichever way it is reached. :class:`ApiSource` is what ``streamguard ask`` uses::

    with ApiSource.connect("http://127.0.0.1:8081", token=os.environ.get("STREAMGUARD_API_TOKEN")) as source:
        row = source.user("erin")            # UserRow, or None for a user absent from the data

The API's ``POST /api/assistant/query`` passes a source reading the request's snapshot directly.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

import httpx
from pydantic import BaseModel, ValidationError

from streamguard.errors import ConfigError, DataError, StreamguardError
from streamguard.serve.models import (
    USER_MAX_LENGTH,
    AnomalyPage,
    FeaturesResponse,
    Stats,
    UserRow,
    user_segment,
)

DEFAULT_TIMEOUT_S = 10.0


class FactSource(Protocol):
    """The three look-ups an answer needs."""

    def user(self, name: str) -> BaseModel | None:
        """The user's :data:`~streamguard.serve.models.UserRow`, or None when the user is not in the data."""

    def stats(self) -> BaseModel:
        """The run's :data:`~streamguard.serve.models.Stats` (totals and the detector's threshold)."""

    def population(self) -> FeaturesResponse:
        """Each feature's definition and its mean/std over all users."""

    # Optional: ``anomalies(limit) -> AnomalyPage``, the most anomalous users. A source without it still answers
    # "How many users are anomalous?"; a list question then points to /api/training-data/anomalies.


class ApiSource:
    """Facts fetched from a running API with httpx; every failure becomes a StreamguardError with one line."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    @classmethod
    def connect(cls, base_url: str, *, token: str | None = None,
                timeout: float = DEFAULT_TIMEOUT_S) -> ApiSource:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return cls(httpx.Client(base_url=base_url, headers=headers, timeout=timeout))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def user(self, name: str) -> BaseModel | None:
        if not name or len(name) > USER_MAX_LENGTH:
            return None
        response = self._get(f"/api/training-data/anomalies/{user_segment(name)}")
        if response.status_code in (404, 422):  # 422: not a possible user name, so not a user either
            return None
        return self._parse(UserRow, response)

    def stats(self) -> BaseModel:
        return self._parse(Stats, self._get("/api/training-data/stats"))

    def population(self) -> FeaturesResponse:
        population = self._parse(FeaturesResponse, self._get("/api/training-data/features"))
        return population  # type: ignore[return-value]

    def anomalies(self, limit: int) -> AnomalyPage:
        """The ``limit`` most anomalous users (flagged only), most anomalous first."""
        page = self._parse(AnomalyPage, self._get(f"/api/training-data/anomalies?limit={int(limit)}"))
        return page  # type: ignore[return-value]

    def _get(self, path: str) -> httpx.Response:
        try:
            return self._client.get(path)
        except httpx.HTTPError as exc:
            raise StreamguardError(
                f"cannot reach the StreamGuard API at {self._client.base_url}: {exc or type(exc).__name__} "
                "(start it with 'streamguard serve --data DIR' or pass --api URL)"
            ) from exc

    def _parse(self, model: type[BaseModel], response: httpx.Response) -> BaseModel:
        if response.status_code == 401:
            raise ConfigError(f"the API at {self._client.base_url} refused the request: set "
                              "STREAMGUARD_API_TOKEN to the token the server was started with")
        if response.status_code == 503:
            raise DataError(f"the API has no training data to answer from: {_message(response)}")
        if response.status_code != 200:
            raise StreamguardError(f"the API answered {response.status_code} to {response.request.url.path}: "
                                   f"{_message(response)}")
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise StreamguardError(f"unexpected answer from {response.request.url.path}: "
                                   f"{exc.errors()[0]['msg']}") from exc


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text[:200]))
    except (ValueError, AttributeError):
        return response.text[:200]
