"""MediaWiki XML dumps written from pages, in the export schema Wikipedia's
dumps use: the tests and `tools/benchmark_prepare.py` make their dumps with
it (nothing is downloaded)."""

import bz2
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


def write(path, pages, streams=1):
    """A dump of `pages` (XML strings); bz2-compressed when `path` ends in
    .bz2, in `streams` streams as a multistream dump is."""
    data = (HEADER + "".join(pages) + "</mediawiki>\n").encode("utf-8")
    if not path.endswith(".bz2"):
        with open(path, "wb") as f:
            f.write(data)
        return path
    cut = [len(data) * i // streams for i in range(streams + 1)]
    with open(path, "wb") as f:
        for a, b in zip(cut, cut[1:]):
            f.write(bz2.compress(data[a:b], 9))
    return path
