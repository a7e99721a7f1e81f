"""The Gradio chat app of paper-rag (`rag chat`); `rag.runtime.configure()` keeps Gradio offline (run it first)."""
