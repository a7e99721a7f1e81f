"""Process start-up: the environment paper-rag needs, set once and explicitly (never at import time)."""

from __future__ import annotations

import os

# Gradio, gradio_client and huggingface_hub phone home unless told not to; huggingface_hub reads these when it is
# first imported, so `configure()` must run before anything imports gradio. A user's own value wins.
OFFLINE_ENV: dict[str, str] = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def configure() -> None:
    """Set the environment defaults paper-rag runs with (offline Gradio/Hugging Face); idempotent.

    Called by `rag` (CLI main), the chat app's launch, `RemoteAssistant` and the test suite's conftest.
    """
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
