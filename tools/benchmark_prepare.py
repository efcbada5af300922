"""Markup removal on a real MediaWiki dump: the corpus tool's cleaner
(`trainers/bert/data/text/wikitext.py`) against WikiExtractor and
mwparserfromhell, on the same pages, one process, in one run.

    python tools/benchmark_prepare.py                  # the tests' 7 real articles, seconds
    python tools/benchmark_prepare.py --dump=/data/enwiki-latest-pages-articles1.xml-p10p30302.bz2
    python tools/benchmark_prepare.py --peers=wikiextractor --repeats=5

The dump's articles (main namespace; redirects and disambiguation pages
left out, as the corpus tool leaves them out) are read into memory first (a
part file of a few MB is the size to give), then every cleaner cleans all of
them, in turn, round after round; each figure is the median over
`--repeats` rounds. The cleaners:

    ours              wikitext.parse, is_disambiguation and paragraphs, as
                      the corpus tool calls them
    wikiextractor     WikiExtractor's Extractor.clean_text as a library,
                      without template expansion (its --no-templates) or
                      HTML escaping (a test dependency: it is AGPL-licensed)
    mwparserfromhell  the parser's parse and strip_code

Prints, per cleaner: pages, seconds, MB/s of markup (UTF-8) and of the dump
file (reading it included), output lines, and the lines that still hold
markup, by kind (`wikitext.leftovers`, the count the tests use).
"""

import bz2
import os
import pathlib
import statistics
import time
import xml.etree.ElementTree as ET

from absl import app, flags

from trainers import stack
from trainers.bert import cli
from trainers.bert.data.text import wikitext
from trainers.bert.errors import DataError

SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "tests/trainers/bert/data/text/pages"
SAMPLE = str(SAMPLE / "enwiki-sample.xml")
PEERS = ("wikiextractor", "mwparserfromhell")

FLAGS = flags.FLAGS
flags.DEFINE_string("dump", SAMPLE, "A MediaWiki XML dump, plain or bz2-compressed.")
flags.DEFINE_list("peers", list(PEERS), f"Cleaners to compare ours with: {', '.join(PEERS)}.")
flags.DEFINE_integer("repeats", 3, "Timed rounds; each runs every cleaner over every page.")


def read_articles(path):
    """[(page id, revision id, title, markup)] of the dump's articles, and
    the seconds reading took."""
    start = time.perf_counter()
    opened = bz2.open(path) if path.endswith(".bz2") else open(path, "rb")
    articles = []
    with opened as f:
        try:
            for _, element in ET.iterparse(f):
                if element.tag.rsplit("}", 1)[-1] == "page":
                    article = _article(element)
                    if article is not None:
                        articles.append(article)
                    element.clear()
        except (EOFError, OSError, ET.ParseError) as error:
            raise DataError(f"{path}: not a readable MediaWiki dump ({error})") from None
    return articles, time.perf_counter() - start


def _article(page):
    """(page id, revision id, title, markup) of an article, else None."""
    fields = _children(page)
    revision = _children(fields["revision"]) if "revision" in fields else {}
    markup = _text(revision, "text")
    if (
        _text(fields, "ns", "0") != "0"
        or "redirect" in fields
        or markup.lstrip().lower().startswith("#redirect")
        or wikitext.is_disambiguation(_text(fields, "title"), wikitext.parse(markup))
    ):
        return None
    return _text(fields, "id"), _text(revision, "id"), _text(fields, "title"), markup


def _children(element):
    return {child.tag.rsplit("}", 1)[-1]: child for child in element}


def _text(fields, name, default=""):
    return fields[name].text or default if name in fields else default


def ours(article):
    _, _, title, markup = article
    code = wikitext.parse(markup)
    return [] if wikitext.is_disambiguation(title, code) else wikitext.paragraphs(code)


def wikiextractor_cleaner():
    stack.require("wikiextractor", ["test"], "tools/benchmark_prepare.py --peers=wikiextractor")
    from wikiextractor.extract import Extractor

    def clean(article):
        page_id, revision, title, markup = article
        extractor = Extractor(page_id, revision, "", title, [])
        return extractor.clean_text(markup, expand_templates=False, html_safe=False)

    return clean


def mwparserfromhell_cleaner():
    stack.require(
        "mwparserfromhell", ["test"], "tools/benchmark_prepare.py --peers=mwparserfromhell"
    )
    import mwparserfromhell

    def clean(article):
        return mwparserfromhell.parse(article[3]).strip_code().split("\n")

    return clean


def cleaners(peers):
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        raise app.UsageError(f"--peers: unknown {unknown}; choose from {', '.join(PEERS)}")
    found = {"ours": ours}
    for name in peers:
        found[name] = {
            "wikiextractor": wikiextractor_cleaner,
            "mwparserfromhell": mwparserfromhell_cleaner,
        }[name]()
    return found


def measure(cleaners, articles, repeats):
    """{name: (median seconds, output lines)}: each round runs every
    cleaner over all articles, so all see the same machine."""
    seconds = {name: [] for name in cleaners}
    lines = {}
    for _ in range(repeats):
        for name, clean in cleaners.items():
            start = time.perf_counter()
            output = [clean(article) for article in articles]
            seconds[name].append(time.perf_counter() - start)
            lines[name] = [
                " ".join(line.split()) for found in output for line in found if line.strip()
            ]
    return {name: (statistics.median(seconds[name]), lines[name]) for name in cleaners}


def table(results, articles, read_seconds, dump_bytes):
    markup = sum(len(article[3].encode()) for article in articles) / 1e6
    kinds = list(wikitext.LEFTOVERS)
    rows = [
        "| cleaner | pages | seconds | MB/s of markup | MB/s of dump | lines | "
        + " | ".join(kinds)
        + " |",
        "|---" * (6 + len(kinds)) + "|",
    ]
    for name, (seconds, lines) in results.items():
        counts = wikitext.leftovers(lines)
        rate = dump_bytes / 1e6 / (read_seconds + seconds)
        rows.append(
            f"| {name} | {len(articles)} | {seconds:.3f} | {markup / seconds:.1f} | {rate:.2f} "
            f"| {len(lines):,} | " + " | ".join(str(counts[kind]) for kind in kinds) + " |"
        )
    return "\n".join(rows)


def main(argv):
    del argv
    chosen = cleaners(FLAGS.peers)  # a missing peer stops here, before any work
    if not os.path.isfile(FLAGS.dump):
        raise DataError(f"--dump={FLAGS.dump}: no such file")
    articles, read_seconds = read_articles(FLAGS.dump)
    if not articles:
        raise DataError(f"--dump={FLAGS.dump}: no articles in it")
    dump_bytes = os.path.getsize(FLAGS.dump)
    markup = sum(len(article[3].encode()) for article in articles) / 1e6
    print(
        f"{FLAGS.dump}: {dump_bytes / 1e6:.2f} MB, {len(articles)} articles, "
        f"{markup:.2f} MB of markup, read in {read_seconds:.2f} s; "
        f"median of {FLAGS.repeats} rounds, {os.cpu_count()} CPUs\n"
    )
    results = measure(chosen, articles, FLAGS.repeats)
    print(table(results, articles, read_seconds, dump_bytes))
    print()
    for name in FLAGS.peers:
        print(f"ours: {results[name][0] / results['ours'][0]:.2f}x the speed of {name}")


if __name__ == "__main__":
    cli.run(main)
