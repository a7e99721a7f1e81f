"""Evaluation harness: gold Q&A sets, metrics, reports and the `rag eval` command."""
