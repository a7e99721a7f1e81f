import gzip
import hashlib
import logging
import shutil
from pathlib import Path

import pytest

import rag
from rag.errors import CorpusError
from rag.loaders import DEFAULT_CORPUS, FORMATS, detect_format, load_papers
from rag.types import normalize_title

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Path:
    return FIXTURES / name


def by_title(papers):
    return {p.title: p for p in papers}


# --- the bundled digest ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digest():
    return load_papers([DEFAULT_CORPUS])


def test_default_corpus_ships_inside_the_package():
    assert DEFAULT_CORPUS.is_file()
    assert DEFAULT_CORPUS.parent.parent == Path(rag.__file__).resolve().parent


def test_digest_has_92_papers_and_no_page_header(digest):
    assert len(digest.papers) == 92
    assert digest.duplicates_merged == 0
    titles = [p.title for p in digest.papers]
    for header in ("new", "Get trending papers in your email inbox!", "Subscribe", "byAK and the research community"):
        assert header not in titles
        assert not any(p.abstract.startswith(header) for p in digest.papers)
    assert "Mar 12" not in titles
    assert titles[0] == "Towards All-in-one Pre-training via Maximizing Multi-modal Mutual Information"
    assert titles[-1] == "ImagenHub: Standardizing the evaluation of conditional image generation models"


def test_digest_keeps_closely_related_papers_apart(digest):
    papers = by_title(digest.papers)
    piip = [t for t in papers if t.startswith("Parameter-Inverted Image Pyramid Networks")]
    asdm = [t for t in papers if t.startswith("A-SDM: Accelerating Stable Diffusion")]
    assert len(piip) == 2
    assert len(asdm) == 2
    assert len({papers[t].id for t in piip + asdm}) == 4


def test_digest_records(digest):
    papers = by_title(digest.papers)
    maxvit = papers["MaxViT: Multi-Axis Vision Transformer"]
    assert maxvit.abstract.startswith("Transformers have recently gained significant attention")
    assert maxvit.abstract.endswith("https://github.com/google-research/maxvit.")
    assert maxvit.code_urls == ("https://github.com/google-research/maxvit",)
    assert maxvit.url == ""  # the digest has no links; none are made up
    assert maxvit.source == "trending_papers.txt"
    assert maxvit.id == "t-" + hashlib.sha1(normalize_title(maxvit.title).encode()).hexdigest()[:12]
    # ZeRO-Infinity names DeepSpeed but gives no URL.
    assert papers["ZeRO-Infinity: Breaking the GPU Memory Wall for Extreme Scale Deep Learning"].code_urls == ()
    assert len([p for p in digest.papers if p.code_urls]) == 48
    for paper in digest.papers:
        for url in paper.code_urls:
            assert url.startswith("https://")
            assert url[-1] not in ".,;)"


def test_digest_urls_in_parentheses_lose_only_the_closing_punctuation(digest):
    urls = {u for p in digest.papers for u in p.code_urls}
    assert "https://rank.opencompass.org.cn/leaderboard-multimodal" in urls
    assert "https://div-lab.github.io/dendromap/" in urls


def test_ids_are_stable_across_loads(digest):
    again = load_papers([DEFAULT_CORPUS])
    assert [p.id for p in again.papers] == [p.id for p in digest.papers]
    assert [p.content_hash for p in again.papers] == [p.content_hash for p in digest.papers]


def test_digest_drops_furniture_anywhere_and_merges_exact_duplicates():
    result = load_papers([fixture("digest_small.txt")])
    assert [p.title for p in result.papers] == [
        "Sparse Widgets: Faster Inference for Tiny Models",
        "Dense Gadgets Revisited",
        "Sparse Widgets for Vision Transformers",
    ]
    assert result.duplicates_merged == 1  # the repeat differs only in spacing
    dense = result.papers[1]
    assert dense.code_urls == ("https://gadgets.example.org/dense",)
    # A title followed directly by its abstract (no blank line) is read too.
    assert result.papers[2].abstract.startswith("We extend Sparse Widgets")


def test_digest_title_without_abstract_names_file_and_line():
    path = fixture("digest_missing_abstract.txt")
    with pytest.raises(CorpusError) as err:
        load_papers([path])
    assert str(err.value) == (
        f"{path}:7: title 'A Title Left Alone' has no abstract after it; add the abstract or remove the title"
    )


def test_digest_title_without_abstract_in_the_middle_names_its_line():
    path = fixture("digest_shifted.txt")
    with pytest.raises(CorpusError) as err:
        load_papers([path])
    assert str(err.value) == (
        f"{path}:5: title 'Second Paper Title Without Abstract' has no abstract after it (the next paragraph, "
        "line 7, is another title); add the abstract or remove the title"
    )


def test_digest_paragraph_where_a_title_belongs_names_the_line():
    path = fixture("digest_split_abstract.txt")
    with pytest.raises(CorpusError) as err:
        load_papers([path])
    assert str(err.value) == (
        f"{path}:5: expected a title line but found a 72-word paragraph (after 'First Paper Title' at line 1); "
        "a title is missing, or an abstract was split by a blank line. Each paper is a title line, a blank line, "
        "then one abstract paragraph"
    )


@pytest.mark.parametrize(
    ("name", "titles", "line"),
    [
        ("digest_shifted.txt", ["First Paper Title", "Third Paper Title"], 5),
        ("digest_split_abstract.txt", ["First Paper Title", "Second Paper Title"], 5),
    ],
)
def test_skip_invalid_keeps_the_good_papers_and_counts_the_bad(caplog, name, titles, line):
    with caplog.at_level(logging.WARNING, logger="rag.loaders"):
        result = load_papers([fixture(name)], skip_invalid=True)
    assert [p.title for p in result.papers] == titles
    assert result.skipped == 1
    assert f"{name}:{line}" in caplog.text


def test_skip_invalid_in_jsonl():
    result = load_papers([fixture("bad_json.jsonl")], skip_invalid=True)
    assert [p.id for p in result.papers] == ["101", "102"]
    assert result.skipped == 1


# --- JSONL / BEIR --------------------------------------------------------------------------------------


def test_beir_corpus_loads_with_no_options():
    result = load_papers([fixture("beir_corpus.jsonl")])
    assert [p.id for p in result.papers] == ["101", "102"]
    assert result.duplicates_merged == 1  # 103 repeats 101 word for word
    folding = result.papers[1]
    assert folding.title == "Protein folding with lattice models"
    assert folding.url == "https://example.org/102"  # from BEIR metadata
    assert folding.year == 2019
    assert folding.authors == ("Ada Lovelace", "Alan Turing")
    assert folding.code_urls == ("https://github.com/example/fold",)


def test_real_scifact_corpus_loads(tmp_path):
    scifact = Path("/work/shared/benchmarks/scifact/corpus.jsonl")
    if not scifact.is_file():
        pytest.skip("the shared SciFact benchmark is not on this machine")
    result = load_papers([scifact])
    assert len(result.papers) + result.duplicates_merged == 5183
    assert all(p.id and p.title and p.abstract for p in result.papers)


def test_jsonl_field_mapping():
    path = fixture("custom_fields.jsonl")
    with pytest.raises(CorpusError, match=r"custom_fields.jsonl:1: line has no title"):
        load_papers([path])
    result = load_papers([path], fields={"title": "name"})  # id and abstract come from aliases
    assert [(p.id, p.title, p.year) for p in result.papers] == [
        ("P-1", "Custom Shapes", 2021),
        ("P-2", "More Shapes", 2022),
    ]
    assert result.papers[0].abstract == "A custom shaped record with a summary."


def test_field_mapping_to_a_missing_key_says_which_key(tmp_path):
    with pytest.raises(CorpusError) as err:
        load_papers([fixture("custom_fields.jsonl")], fields={"title": "name", "abstract": "body"})
    assert str(err.value).endswith(
        "custom_fields.jsonl:1: line has no abstract (read from 'body'); every paper needs a title and an abstract"
    )


def test_unknown_field_names_are_refused():
    with pytest.raises(CorpusError, match="unknown field\\(s\\) in the field mapping: abstrct"):
        load_papers([fixture("custom_fields.jsonl")], fields={"abstrct": "summary"})


def test_bad_json_line_names_file_and_line():
    path = fixture("bad_json.jsonl")
    with pytest.raises(CorpusError) as err:
        load_papers([path])
    assert str(err.value) == (
        f"{path}:3: not valid JSON (Expecting ',' delimiter at column 58); each line must be one JSON object "
        "(JSON lines, not one JSON array)"
    )


def test_missing_abstract_names_file_and_line():
    path = fixture("missing_abstract.jsonl")
    with pytest.raises(CorpusError) as err:
        load_papers([path])
    assert str(err.value) == f"{path}:2: line has no abstract; every paper needs a title and an abstract"


def test_a_json_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('["not", "an", "object"]\n')
    with pytest.raises(CorpusError, match=r"list\.jsonl:1: expected a JSON object, found a JSON list; each line"):
        load_papers([path])


def test_a_pretty_printed_json_array_is_explained(tmp_path):
    path = tmp_path / "papers.json"
    path.write_text('[\n  {"id": "1", "title": "T", "abstract": "A"}\n]\n')
    assert detect_format(path) == "jsonl"
    with pytest.raises(CorpusError) as err:
        load_papers([path])
    assert str(err.value) == (
        f"{path}:1: not valid JSON (Expecting value at column 2); each line must be one JSON object "
        "(JSON lines, not one JSON array)"
    )


def test_non_utf8_input_names_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"_id": "1", "title": "ok", "text": "fine"}\n{"_id": "2", "title": "caf\xe9", "text": "x"}\n')
    with pytest.raises(CorpusError, match=r"latin1.jsonl:2: not UTF-8 text .*; save the file as UTF-8"):
        load_papers([path])


# --- CSV -----------------------------------------------------------------------------------------------


def test_csv_with_aliases_and_a_multiline_quoted_field():
    result = load_papers([fixture("papers.csv")])
    tabular, graphs = result.papers
    assert tabular.id == "c1"
    assert tabular.abstract == "Tabular data, e.g. spreadsheets, is hard. A second line of the abstract, inside quotes."
    assert tabular.url == "https://example.org/c1"
    assert tabular.year == 2020
    assert tabular.authors == ("Ada Lovelace", "Alan Turing")
    assert (graphs.id, graphs.year, graphs.url, graphs.authors) == ("c2", 2018, "", ())


def test_csv_field_mapping():
    fields = {"id": "key", "title": "headline", "abstract": "body", "year": "when"}
    (paper,) = load_papers([fixture("mapped.csv")], fields=fields).papers
    assert (paper.id, paper.title, paper.abstract, paper.year) == (
        "m1",
        "Mapped Columns",
        "The abstract lives in a column called body.",
        2017,
    )


def test_csv_row_with_wrong_column_count_names_the_line():
    path = fixture("bad_columns.csv")
    with pytest.raises(CorpusError) as err:
        load_papers([path])
    assert str(err.value) == (
        f"{path}:3: row has 4 columns but the header has 3; quote fields that contain ',' or line breaks"
    )


def test_csv_line_numbers_count_multiline_fields(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text('id,title,abstract\na,T,"line one\nline two\nline three"\nb,Bad,too,many\n')
    with pytest.raises(CorpusError, match=r"multi.csv:5: row has 4 columns"):
        load_papers([path])


def test_tsv_is_read_with_tabs(tmp_path):
    path = tmp_path / "papers.tsv"
    path.write_text("id\ttitle\tabstract\nt1\tTabs, Commas\tAn abstract, with commas.\n")
    (paper,) = load_papers([path]).papers
    assert (paper.id, paper.title, paper.abstract) == ("t1", "Tabs, Commas", "An abstract, with commas.")


# --- BibTeX --------------------------------------------------------------------------------------------


def test_bibtex_entries(caplog):
    with caplog.at_level(logging.WARNING, logger="rag.loaders"):
        result = load_papers([fixture("papers.bib")])
    papers = {p.id: p for p in result.papers}
    assert list(papers) == ["mueller2021", "lee2019"]
    lee = papers["lee2019"]
    assert lee.title == "Sparse Coding at Scale"
    assert lee.url == "https://example.org/lee2019"
    assert lee.year == 2019
    assert lee.authors == ("Ann Lee",)
    assert lee.code_urls == ("https://github.com/example/sparse-coding",)
    # The key appears twice with different content: the later entry wins, with a warning.
    mueller = papers["mueller2021"]
    assert mueller.title == "Robust Estimation for Müller Processes, Revised"
    assert mueller.year == 2022
    assert mueller.authors == ("Karl Müller",)
    assert result.duplicates_merged == 1
    assert "id 'mueller2021' appears again with different content; keeping the later one" in caplog.text


def test_bibtex_doi_becomes_the_url(tmp_path):
    path = tmp_path / "doi.bib"
    path.write_text(
        "@article{x, title={Doi Only}, abstract={Abstract.}, author={Doe, Jane and Roe, Rick}, doi={10.1000/xyz}}\n"
    )
    (paper,) = load_papers([path]).papers
    assert paper.url == "https://doi.org/10.1000/xyz"
    assert paper.authors == ("Jane Doe", "Rick Roe")


def test_bibtex_parse_failure_names_the_block_line():
    path = fixture("broken.bib")
    with pytest.raises(CorpusError) as err:
        load_papers([path])
    assert str(err.value).startswith(f"{path}:6: BibTeX parse failure in the block starting '@article{{broken,': ")
    assert "Was still looking for field-value closing" in str(err.value)


def test_bibtex_entry_without_abstract():
    path = fixture("no_abstract.bib")
    with pytest.raises(CorpusError) as err:
        load_papers([path])
    assert str(err.value) == (f"{path}:1: entry 'knuth1984' has no abstract; every paper needs a title and an abstract")


# --- arXiv snapshot ------------------------------------------------------------------------------------


def check_arxiv(papers):
    diphoton, lora = papers
    assert diphoton.id == "0704.0001"
    assert diphoton.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert diphoton.abstract.startswith("A fully differential calculation in perturbative quantum chromodynamics is ")
    assert "\n" not in diphoton.abstract and not diphoton.abstract.endswith(" ")
    assert diphoton.url == "https://arxiv.org/abs/0704.0001"
    assert diphoton.year == 2007  # first version, not the 2008 update
    assert diphoton.authors == ("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan")
    assert lora.year == 2021
    assert lora.authors == ("Edward J. Hu", "Yelong Shen", "Phillip Wallis")
    assert lora.code_urls == ("https://github.com/microsoft/LoRA",)  # code host links from comments only


def test_arxiv_snapshot():
    check_arxiv(load_papers([fixture("arxiv_snapshot.jsonl")]).papers)


def test_gzipped_arxiv_snapshot(tmp_path):
    path = tmp_path / "arxiv-metadata-oai-snapshot.json.gz"
    with fixture("arxiv_snapshot.jsonl").open("rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert detect_format(path) == "arxiv"
    check_arxiv(load_papers([path]).papers)


def test_arxiv_missing_abstract_names_the_line(tmp_path):
    path = tmp_path / "snap.jsonl"
    lines = fixture("arxiv_snapshot.jsonl").read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1].replace('"abstract"', '"abstrakt"') + "\n")
    with pytest.raises(CorpusError) as err:
        load_papers([path], fmt="arxiv")
    assert str(err.value) == (
        f"{path}:2: line (arXiv 2106.09685) has no abstract; every paper needs a title and an abstract"
    )


# --- format detection, paths, merging ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("digest_small.txt", "digest"),
        ("beir_corpus.jsonl", "jsonl"),
        ("custom_fields.jsonl", "jsonl"),
        ("arxiv_snapshot.jsonl", "arxiv"),
        ("papers.csv", "csv"),
        ("papers.bib", "bibtex"),
    ],
)
def test_detect_format_by_extension_and_content(name, fmt):
    assert detect_format(fixture(name)) == fmt


def test_detect_format_by_content_without_a_known_extension(tmp_path):
    arxiv = tmp_path / "snapshot"
    arxiv.write_bytes(fixture("arxiv_snapshot.jsonl").read_bytes())
    bib = tmp_path / "refs.dat"
    bib.write_bytes(fixture("papers.bib").read_bytes().split(b"\n", 1)[1])
    unknown = tmp_path / "notes.xyz"
    unknown.write_text("plain words\n")
    assert detect_format(arxiv) == "arxiv"
    assert detect_format(bib) == "bibtex"
    with pytest.raises(CorpusError) as err:
        detect_format(unknown)
    assert str(err.value) == (
        f"{unknown}: cannot tell the format from the name or content; pass fmt= (CLI: --format) "
        f"one of {', '.join(FORMATS)}"
    )


def test_fmt_overrides_detection():
    result = load_papers([fixture("arxiv_snapshot.jsonl")], fmt="jsonl")
    assert [p.id for p in result.papers] == ["0704.0001", "2106.09685"]
    assert result.papers[0].url == ""  # the generic reader makes no arXiv links
    with pytest.raises(CorpusError, match="unknown format 'xml'; use one of digest, jsonl, csv, bibtex, arxiv"):
        load_papers([fixture("arxiv_snapshot.jsonl")], fmt="xml")


def test_a_single_path_may_be_given_bare():
    assert len(load_papers(str(fixture("papers.csv"))).papers) == 2
    with pytest.raises(CorpusError, match="no collection files given"):
        load_papers([])


def test_missing_file_suggests_the_fix(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(CorpusError) as err:
        load_papers([missing])
    assert str(err.value).startswith(f"{missing}: no such file; check the path")
    assert "give no path to load the bundled collection" in str(err.value)


def test_a_directory_is_not_a_collection_file(tmp_path):
    with pytest.raises(CorpusError, match="not a file; pass the collection files themselves"):
        load_papers([tmp_path])


def test_empty_file_is_an_error():
    path = fixture("empty.txt")
    with pytest.raises(CorpusError) as err:
        load_papers([path])
    assert str(err.value) == f"{path}: no papers found in this digest file; is it the right file and format?"


def test_an_error_in_a_later_file_fails_the_whole_load():
    with pytest.raises(CorpusError, match=r"bad_json\.jsonl:3"):
        load_papers([fixture("beir_corpus.jsonl"), fixture("bad_json.jsonl")])


def test_exact_duplicates_across_files_are_merged():
    result = load_papers([fixture("beir_corpus.jsonl"), fixture("beir_corpus.jsonl")])
    assert [p.id for p in result.papers] == ["101", "102"]
    assert result.duplicates_merged == 4


def test_the_same_id_again_keeps_the_last_version(tmp_path, caplog):
    first = tmp_path / "first.jsonl"
    first.write_text('{"id": "x", "title": "T", "abstract": "Same.", "year": 2020}\n')
    second = tmp_path / "second.jsonl"
    second.write_text('{"id": "x", "title": "T", "abstract": "Same.", "year": 2021}\n')
    with caplog.at_level(logging.WARNING, logger="rag.loaders"):
        result = load_papers([first, second])
    (paper,) = result.papers
    assert (paper.year, paper.source, result.duplicates_merged) == (2021, "second.jsonl", 1)
    assert "appears again" not in caplog.text  # only the metadata changed


def test_several_formats_load_together():
    result = load_papers([fixture("digest_small.txt"), fixture("papers.csv"), fixture("papers.bib")])
    assert len(result.papers) == 3 + 2 + 2
    assert {p.source for p in result.papers} == {"digest_small.txt", "papers.csv", "papers.bib"}
