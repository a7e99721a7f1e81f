import itertools
import os
import re
import subprocess
import sys

import pytest

from rag.chunking import chunk_paper, split_sentences
from rag.loaders import DEFAULT_CORPUS, load_papers
from rag.tokens import count_tokens
from rag.types import Paper


@pytest.fixture(scope="module")
def digest_papers() -> list[Paper]:
    return load_papers([DEFAULT_CORPUS]).papers


def no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Methods, e.g. pruning, help. They work, i.e. they are fast.",
            ["Methods, e.g. pruning, help.", "They work, i.e. they are fast."],
        ),
        (
            "As shown by Smith et al. in prior work, CNNs vs. ViTs differ. We agree.",
            ["As shown by Smith et al. in prior work, CNNs vs. ViTs differ.", "We agree."],
        ),
        (
            "See Fig. 3 and Eq. 2 for details. The U.S. team won.",
            ["See Fig. 3 and Eq. 2 for details.", "The U.S. team won."],
        ),
        (
            "MaxViT attains 86.5% top-1 accuracy and runs 2.8x faster than v1.2.3 of the baseline. It scales.",
            ["MaxViT attains 86.5% top-1 accuracy and runs 2.8x faster than v1.2.3 of the baseline.", "It scales."],
        ),
        (
            "Code is at https://github.com/OpenGVLab/PIIP. Models follow.",
            ["Code is at https://github.com/OpenGVLab/PIIP.", "Models follow."],
        ),
        (
            "See the page (https://example.org/a.b/c.html). Results improve by 3.5. Really? Yes!",
            ["See the page (https://example.org/a.b/c.html).", "Results improve by 3.5.", "Really?", "Yes!"],
        ),
        ("Accuracy on ImageNet dist. shifts improves.", ["Accuracy on ImageNet dist. shifts improves."]),
        (
            'We ask "Is a picture worth a thousand words?"; (b) we scale. "Quoted" starts this one.',
            ['We ask "Is a picture worth a thousand words?"; (b) we scale.', '"Quoted" starts this one.'],
        ),
        ("  Spread\nover   lines.\n\nSecond  one. ", ["Spread over lines.", "Second one."]),
        # an abbreviation Punkt does not know, glued to a number: no sentence starts with a lower-case word ...
        (
            "We beat it by 1.1p.p. while only using 27.7% of the data. Next.",
            ["We beat it by 1.1p.p. while only using 27.7% of the data.", "Next."],
        ),
        # ... but one may start with a name written in lower case
        ("It does not need the latent space. lambda-ECLIPSE needs 34M parameters.",
         ["It does not need the latent space.", "lambda-ECLIPSE needs 34M parameters."]),
        ("", []),
        ("   \n ", []),
    ],
)
def test_split_sentences_scientific_edge_cases(text, expected):
    assert split_sentences(text) == expected


def test_the_sentence_model_loads_offline():
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network disabled in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import os, nltk.data\n"
        "paths, env = list(nltk.data.path), dict(os.environ)\n"
        "from rag.chunking import split_sentences\n"
        "print(len(split_sentences('Smith et al. agree, e.g. here. Fig. 2 shows it.')))\n"
        "print(nltk.data.path == paths, dict(os.environ) == env)\n"  # no global state changed
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NLTK_DATA", "TIKTOKEN_CACHE_DIR")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "True", "True"]


def test_split_sentences_loses_no_text_on_the_digest(digest_papers):
    for paper in digest_papers:
        sentences = split_sentences(paper.abstract)
        assert " ".join(sentences) == paper.abstract
        assert len(sentences) >= 2


def test_an_abstract_under_the_budget_is_one_chunk(digest_papers):
    paper = digest_papers[0]
    chunks = chunk_paper(paper, budget_tokens=1000)
    assert len(chunks) == 1
    (chunk,) = chunks
    assert chunk.id == f"{paper.id}#0"
    assert chunk.paper_id == paper.id
    assert chunk.index == 0
    assert chunk.text == paper.abstract
    assert chunk.n_tokens == count_tokens(paper.abstract)


def test_the_title_is_context_not_part_of_the_chunk(digest_papers):
    paper = digest_papers[0]
    chunk = chunk_paper(paper, budget_tokens=1000)[0]
    assert paper.title not in chunk.text
    assert chunk.embed_text(paper.title) == f"{paper.title}\n{paper.abstract}"


@pytest.mark.parametrize("budget", [40, 64, 200])
def test_long_abstracts_split_within_the_budget_on_sentence_boundaries(digest_papers, budget):
    multi = 0
    for paper in digest_papers:
        chunks = chunk_paper(paper, budget_tokens=budget)
        sentences = split_sentences(paper.abstract)
        if count_tokens(paper.abstract) > budget:
            assert len(chunks) > 1
            multi += 1
        for i, chunk in enumerate(chunks):
            assert chunk.id == f"{paper.id}#{i}"
            assert chunk.index == i
            assert 0 < chunk.n_tokens == count_tokens(chunk.text) <= budget
        # No sentence is lost, and sentences that fit the budget are never cut.
        joined = " ".join(c.text for c in chunks)
        for sentence in sentences:
            if count_tokens(sentence) <= budget:
                assert any(sentence in c.text for c in chunks), sentence
            else:
                assert no_space(sentence)[:20] in no_space(joined)
    assert multi > 0


def test_chunk_ids_and_texts_are_stable(digest_papers):
    paper = digest_papers[1]
    assert chunk_paper(paper, 64) == chunk_paper(paper, 64)


def test_overlap_repeats_the_last_sentence_of_the_previous_chunk(digest_papers):
    paper = next(p for p in digest_papers if count_tokens(p.abstract) > 250)
    chunks = chunk_paper(paper, budget_tokens=80, overlap_sentences=1)
    assert len(chunks) > 2
    for before, after in itertools.pairwise(chunks):
        last = split_sentences(before.text)[-1]
        assert after.text.startswith(last)
        assert after.text != last  # every chunk adds a new sentence


def test_without_overlap_the_chunks_are_the_abstract_in_order(digest_papers):
    exact = 0
    for paper in digest_papers:
        chunks = chunk_paper(paper, budget_tokens=50, overlap_sentences=0)
        joined = " ".join(c.text for c in chunks)
        assert no_space(joined) == no_space(paper.abstract)
        if all(count_tokens(s) <= 50 for s in split_sentences(paper.abstract)):
            assert joined == paper.abstract  # no sentence was cut, so the chunks are whole sentences
            exact += 1
    assert exact > 10


def test_a_sentence_longer_than_the_budget_is_split_by_tokens_not_dropped():
    words = " ".join(f"internationalization{i}" for i in range(120))
    paper = Paper(id="long", title="One Endless Sentence", abstract=f"Short start. {words} end. Short finish.")
    chunks = chunk_paper(paper, budget_tokens=32, overlap_sentences=0)
    assert len(chunks) > 5
    assert all(c.n_tokens <= 32 for c in chunks)
    assert no_space("".join(c.text for c in chunks)) == no_space(paper.abstract)
    assert chunks[0].text.startswith("Short start.")
    assert chunks[-1].text.endswith("Short finish.")


def test_an_empty_abstract_gives_no_chunks_and_bad_budgets_are_refused():
    assert chunk_paper(Paper(id="e", title="Empty", abstract=""), 64) == []
    paper = Paper(id="p", title="T", abstract="One sentence.")
    with pytest.raises(ValueError, match="budget_tokens"):
        chunk_paper(paper, 0)
    with pytest.raises(ValueError, match="overlap_sentences"):
        chunk_paper(paper, 10, overlap_sentences=-1)
