"""Every checked-in gold file is valid against the bundled digest; broken gold files fail with file:line messages."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from evals.gold_schema import ITEM_TYPES, GoldError, gold_files, load_gold
from rag.errors import RagError
from rag.loaders import DEFAULT_CORPUS, load_papers
from rag.types import normalize_title


@pytest.fixture(scope="module")
def digest_papers():
    return load_papers([DEFAULT_CORPUS]).papers


def test_there_are_gold_files():
    assert [p.name for p in gold_files()], "evals/gold/ holds no *.jsonl file"


@pytest.mark.parametrize("path", gold_files(), ids=lambda p: p.name)
def test_gold_file_is_valid_against_the_digest(path, digest_papers):
    items = load_gold(path, digest_papers)
    assert len({i.id for i in items}) == len(items)


def _split(name, digest_papers):
    return load_gold(next(p for p in gold_files() if p.name == name), digest_papers)


@pytest.mark.parametrize("name", ["dev.jsonl", "test.jsonl"])
def test_each_split_covers_types_and_papers(name, digest_papers):
    items = _split(name, digest_papers)
    counts = Counter(i.type for i in items)
    assert set(counts) == set(ITEM_TYPES)
    assert min(counts.values()) >= 10
    covered = {normalize_title(t) for i in items for t in i.gold_titles}
    assert len(covered) >= 65
    assert all(len(i.gold_titles) >= 2 for i in items if i.type == "multi_paper")
    for i in items:
        if i.history:
            assert [m.role for m in i.history][:2] == ["user", "assistant"]
            # an assistant turn carries the papers it cites, one per [n] marker, [1] first
            for m in i.history:
                if m.role == "assistant" and "[1]" in m.content:
                    assert len(m.papers) == len(set(re.findall(r"\[(\d+)\]", m.content))), i.where


def test_test_split_meets_the_issue_sizes(digest_papers):
    counts = Counter(i.type for i in _split("test.jsonl", digest_papers))
    minimum = {"factoid": 40, "multi_paper": 30, "which_paper": 20, "summary": 15, "unanswerable": 25,
               "follow_up": 20, "topic_switch": 15}  # fmt: skip
    assert all(counts[t] >= n for t, n in minimum.items()), counts
    assert sum(counts.values()) >= 150


def test_splits_share_no_question(digest_papers):
    dev, test = _split("dev.jsonl", digest_papers), _split("test.jsonl", digest_papers)

    def norm(text):
        return " ".join(re.findall(r"[a-z0-9]+", text.lower()))

    assert not {norm(i.question) for i in dev} & {norm(i.question) for i in test}
    assert not {i.id for i in dev} & {i.id for i in test}


def _write(tmp_path, rows):
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_broken_gold_file_reports_every_problem_with_its_line(tmp_path, digest_papers):
    ok = {"id": "b1", "type": "factoid", "question": "What top-1 does MaxViT reach?",
          "gold_titles": ["MaxViT: Multi-Axis Vision Transformer"], "answer": "86.5%", "must_include": ["86.5%"]}
    path = _write(tmp_path, [
        ok,
        '{"id": "b2", "type": ',
        {**ok, "id": "b3", "type": "trivia"},
        {**ok, "id": "b1"},
        {**ok, "id": "b5", "history": [{"role": "user", "content": "hi"}]},
        {**ok, "id": "b6", "gold_titles": ["A Paper That Does Not Exist"]},
        {**ok, "id": "b7", "must_include": ["99.9%"]},
        {**ok, "id": "b8", "type": "unanswerable"},
        {**ok, "id": "b9", "type": "follow_up"},
        {**ok, "id": "b10", "extra": 1},
    ])
    with pytest.raises(GoldError) as err:
        load_gold(path, digest_papers)
    message = str(err.value)
    assert message.startswith(f"9 problem(s) in gold file {path}:")
    for line, fragment in [
        (2, "not valid JSON"),
        (3, "type: Input should be 'factoid'"),
        (4, "duplicate id 'b1' (first on line 1)"),
        (5, "only follow_up and topic_switch items may have a history"),
        (6, "gold title not in the collection: 'A Paper That Does Not Exist'"),
        (7, "must_include '99.9%' occurs in no gold abstract of b7"),
        (8, "an unanswerable item must have empty gold_titles and must_include"),
        (9, "a follow_up item needs a non-empty history"),
        (10, "unknown field(s) extra"),
    ]:
        assert f"{path}:{line}: " in message and fragment in message, (line, fragment)
    assert f"{path}:1:" not in message


def test_gold_errors_are_rag_errors(tmp_path):
    with pytest.raises(RagError, match=r"cannot read gold file .*missing\.jsonl"):
        load_gold(tmp_path / "missing.jsonl")
    with pytest.raises(GoldError, match="no gold items"):
        load_gold(_write(tmp_path, [""]))


def test_titles_match_after_normalization(tmp_path, digest_papers):
    row = {"id": "n1", "type": "which_paper", "question": "Which paper adds multi-axis attention?",
           "gold_titles": ["maxvit multi axis vision transformer"], "must_include": ["MaxViT"]}
    assert load_gold(_write(tmp_path, [row]), digest_papers)[0].gold_titles == tuple(row["gold_titles"])
