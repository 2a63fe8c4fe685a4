"""Questions about one user's batch result, answered from the serving API's data.

    >>> from streamguard.assistant import ApiSource, answer_question
    >>> with ApiSource.connect("http://127.0.0.1:8081") as source:
    ...     print(answer_question("Is user manager anomalous?", source=source).answer)

``streamguard ask`` does exactly this; the API's ``POST /api/assistant/query`` answers from its loaded
snapshot (awaiting :func:`answer_question_async`: slow model calls hold no thread). Answers are templates by
default (no network beyond the API); see :mod:`streamguard.assistant.llm`
to have an OpenAI-compatible model phrase them.
"""

from streamguard.assistant.answer import (
    AssistantAnswer,
    Deviation,
    answer_question,
    answer_question_async,
    deviations,
)
from streamguard.assistant.llm import FALLBACK_REASONS, AssistantMetrics, LlmConfig, Phraser
from streamguard.assistant.resolve import Resolved, resolve_user
from streamguard.assistant.source import ApiSource, FactSource

__all__ = [
    "FALLBACK_REASONS", "ApiSource", "AssistantAnswer", "AssistantMetrics", "Deviation", "FactSource", "LlmConfig",
    "Phraser", "Resolved", "answer_question", "answer_question_async", "deviations", "resolve_user",
]
