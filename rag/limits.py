"""Input limits, one copy of each: questions and queries (ask, search, chat app, API) and collection records."""

from __future__ import annotations

import re

from rag.errors import QuestionError

# Default of Settings.max_abstract_chars (RAG_MAX_ABSTRACT_CHARS): loaders refuse longer abstracts, naming the record.
# Real abstracts have a few thousand characters; 100,000 is a whole paper's text, beyond which it is not an abstract.
MAX_ABSTRACT_CHARS = 100_000
# Loaders refuse longer titles: another field read as the title (a title is embedded and indexed with every chunk).
MAX_TITLE_CHARS = 2_000

# Control characters (Unicode category Cc: NUL, escape sequences, DEL, C1) other than tab and line breaks, which
# are plain white space. They carry no meaning in a question and can hide text from a terminal or a log, so they
# are stripped (each becomes a space) rather than refused: "what\x00is" reads as "what is".
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_question(text: str, max_chars: int, what: str = "question") -> str:
    """The question with control characters stripped and white space normalized; QuestionError when empty or long.

    max_chars is Settings.max_question_chars (RAG_MAX_QUESTION_CHARS), the one limit for questions and queries.
    """
    cleaned = " ".join(CONTROL_CHARS.sub(" ", text or "").split())
    if not cleaned:
        raise QuestionError(f"the {what} is empty: type a {what} about the papers in the collection")
    if len(cleaned) > max_chars:
        raise QuestionError(
            f"the {what} is {len(cleaned):,} characters long, over the limit of {max_chars:,}; "
            "shorten it or raise RAG_MAX_QUESTION_CHARS"
        )
    return cleaned
