"""Throughput of `tools/prepare_corpus.py` on MediaWiki dumps: MB of
compressed dump read per second, on 1 and on 2 processes, in one run.

    python tools/benchmark_prepare.py                   # about 2 minutes on 2 cores

No dump is downloaded: the tool writes `--files` bz2 dumps of about
`--mb` MB each from the built-in corpus's help text, marked up as Wikipedia
articles are (an infobox with nested templates, linked words, a reference
with a citation template after most sentences, a table, a file link, a
references section, categories), plus redirects and talk pages; then times
the command's library on them with each process count (every run from an
empty output folder).
"""

import argparse
import os
import random
import tempfile
import time

from trainers import stack
from trainers.bert.data.shards import corpus
from trainers.bert.data.text import prepare, wiki_sample


def article(title, sentences, rng):
    """A Wikipedia-like article of `sentences` with its markup."""
    lines = [
        f"{{{{Infobox topic|name={title}|year={{{{start date|{rng.randint(1990, 2020)}|1|1}}}}}}}}",
        f"'''{title}''' is a topic of the Python documentation.",
    ]
    for i, sentence in enumerate(sentences):
        words = sentence.split()
        if len(words) > 4:
            k = rng.randrange(len(words))
            words[k] = f"[[{words[k].strip('.,;:')}|{words[k]}]]"
        ref = (
            f'<ref name="r{i}">{{{{cite web|url=https://docs.python.org/{i}|title={title}}}}}</ref>'
        )
        lines.append(" ".join(words) + (ref if i % 3 else ""))
        if i % 7 == 6:
            lines.append(f"\n== Section {i} ==")
    lines += [
        '{| class="wikitable"\n|-\n! Name !! Value\n|-\n| a || 1\n|}',
        f"[[File:{title}.png|thumb|The [[{title}]] diagram]]",
        "== References ==\n{{reflist}}",
        f"[[Category:{title}]]",
    ]
    return "\n".join(lines)


def write_dumps(folder, files, mb, seed=0):
    rng = random.Random(seed)
    topics = corpus.builtin_topics()
    texts = [(key, corpus.topic_sentences(topics[key])) for key in sorted(topics)]
    paths = []
    for f in range(files):
        pages, size, n = [], 0, 0
        while size < mb * 6e6:  # bz2 shrinks this text about 6-fold
            title, sentences = texts[n % len(texts)]
            title = f"{title} {f}-{n}"
            text = article(title, sentences, rng)
            pages.append(wiki_sample.page(title, text, page_id=n))
            if n % 10 == 0:
                pages.append(wiki_sample.page(f"Talk:{title}", "Is this right?", ns=1))
                pages.append(
                    wiki_sample.page(title.upper(), f"#REDIRECT [[{title}]]", redirect=title)
                )
            size += len(text)
            n += 1
        paths.append(wiki_sample.write(os.path.join(folder, f"dump{f}.xml.bz2"), pages, streams=4))
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--files", type=int, default=4, help="dump files (the unit of parallel work)"
    )
    parser.add_argument("--mb", type=float, default=2.0, help="compressed MB per dump file")
    parser.add_argument("--processes", default="1,2", help="process counts to time")
    args = parser.parse_args(argv)
    for module in ("sentencex", "mwparserfromhell"):  # before the dumps are written
        stack.require(module, ["corpus"], "tools/benchmark_prepare.py")
    counts = [int(p) for p in args.processes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        paths = write_dumps(folder, args.files, args.mb)
        size = sum(os.path.getsize(p) for p in paths)
        print(f"{len(paths)} dump file(s), {size / 1e6:.1f} MB compressed")
        rows = []
        for processes in counts:
            output = os.path.join(folder, f"out{processes}")
            start = time.perf_counter()
            manifest = prepare.prepare(
                ",".join(paths), output, processes=processes, log=lambda _: None
            )
            seconds = time.perf_counter() - start
            rows.append((processes, seconds, size / 1e6 / seconds, manifest))
        print(
            "\n| processes | seconds | MB/s of dump | articles | sentences |\n|---|---|---|---|---|"
        )
        for processes, seconds, rate, manifest in rows:
            print(
                f"| {processes} | {seconds:.1f} | {rate:.2f} | {manifest['documents']:,} | "
                f"{manifest['sentences']:,} |"
            )
        if len(rows) > 1:
            print(
                f"\nspeed-up, {rows[-1][0]} processes against {rows[0][0]}: "
                f"{rows[-1][2] / rows[0][2]:.2f}x"
            )


if __name__ == "__main__":
    main()
