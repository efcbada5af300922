"""MediaWiki XML dumps written from pages, in the export schema Wikipedia's
dumps use: the tests and `tools/benchmark_prepare.py` make their dumps with
it (nothing is downloaded)."""

import bz2
import gzip
import os
from xml.sax.saxutils import escape

HEADER = (
    '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="en">\n'
    "  <siteinfo><sitename>Wikipedia</sitename></siteinfo>\n"
)


def page(title, text, ns=0, redirect=None, page_id=1):
    """One <page> element's XML."""
    redirect_tag = f'    <redirect title="{escape(redirect)}" />\n' if redirect else ""
    return (
        f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n"
        f"    <id>{page_id}</id>\n{redirect_tag}    <revision>\n      <id>{page_id}</id>\n"
        f'      <text bytes="{len(text)}" xml:space="preserve">{escape(text)}</text>\n'
        "    </revision>\n  </page>\n"
    )


def write(path, pages, streams=1, compression=None):
    """A dump of `pages` (XML strings), compressed as `compression` says:
    "bz2" (in `streams` streams, as a multistream dump is), "gzip" or
    "none"; by default as the name ends (.bz2, .gz, else none), so a test
    can also write one whose name says otherwise."""
    data = (HEADER + "".join(pages) + "</mediawiki>\n").encode("utf-8")
    if compression is None:
        compression = {".bz2": "bz2", ".gz": "gzip"}.get(os.path.splitext(path)[1], "none")
    if compression == "bz2":
        cut = [len(data) * i // streams for i in range(streams + 1)]
        data = b"".join(bz2.compress(data[a:b], 9) for a, b in zip(cut, cut[1:]))
    elif compression == "gzip":
        data = gzip.compress(data)
    elif compression != "none":
        raise ValueError(f"compression={compression!r}: bz2, gzip or none")
    with open(path, "wb") as f:
        f.write(data)
    return path
