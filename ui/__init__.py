"""The Gradio chat app of paper-rag (`rag chat`); importing `ui` keeps Gradio offline."""

import os

# Gradio and huggingface_hub phone home unless told not to; set before any `import gradio`.
for _name, _value in (
    ("GRADIO_ANALYTICS_ENABLED", "False"),
    ("HF_HUB_OFFLINE", "1"),
    ("HF_HUB_DISABLE_TELEMETRY", "1"),
):
    os.environ.setdefault(_name, _value)
