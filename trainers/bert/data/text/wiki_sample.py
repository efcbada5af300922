"""MediaWiki XML dumps written from pages, in the export schema Wikipedia's
dumps use: the tests make their dumps with it (nothing is downloaded). A
multistream dump comes with its index, as Wikimedia publishes them."""

import bz2
import gzip
import os
import re
from xml.sax.saxutils import escape, unescape

FOOTER = "</mediawiki>\n"
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
    "bz2" (in `streams` streams cut anywhere in the XML; Wikimedia's
    multistream dumps cut between pages: `write_multistream`), "gzip" or
    "none"; by default as the name ends (.bz2, .gz, else none), so a test
    can also write one whose name says otherwise."""
    data = (HEADER + "".join(pages) + FOOTER).encode("utf-8")
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


def write_multistream(path, pages, pages_per_stream=100, index=None):
    """A multistream dump as Wikimedia makes one
    (`...-pages-articles-multistream.xml.bz2`): a bz2 stream for the header
    and siteinfo, one per `pages_per_stream` pages, one for the closing
    tag. With `index` (a path), its index too: a line
    `OFFSET:PAGE_ID:TITLE` per page, OFFSET the byte at which the stream
    holding the page starts, bz2-compressed. Returns `path`."""
    streams = [bz2.compress(HEADER.encode("utf-8"), 9)]
    lines, offset = [], len(streams[0])
    for first in range(0, len(pages), pages_per_stream):
        group = pages[first : first + pages_per_stream]
        lines += [f"{offset}:{page_id}:{title}\n" for page_id, title in map(_id_and_title, group)]
        streams.append(bz2.compress("".join(group).encode("utf-8"), 9))
        offset += len(streams[-1])
    streams.append(bz2.compress(FOOTER.encode("utf-8"), 9))
    with open(path, "wb") as f:
        f.write(b"".join(streams))
    if index is not None:
        with open(index, "wb") as f:
            f.write(bz2.compress("".join(lines).encode("utf-8"), 9))
    return path


def _id_and_title(page_xml):
    """A <page> element's id and title (unescaped, as the index has it)."""
    page_id = re.search(r"<id>(\d+)</id>", page_xml).group(1)
    title = re.search(r"<title>(.*?)</title>", page_xml, re.S).group(1)
    return page_id, unescape(title)
