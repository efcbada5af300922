"""Small MediaWiki XML dumps with real markup, written by the tests (bz2,
gzip or plain, by the name or as `compression` says; multistream with its
index, as Wikimedia publishes English Wikipedia)."""

from trainers.bert.data.text import wiki_sample
from trainers.bert.data.text.wiki_sample import page

ARTICLE = """{{Infobox scientist|name=Alan Turing|birth_date={{birth date|1912|6|23}}}}
'''Alan Turing''' was an English [[mathematician|maths scholar]] and [[computer science|computer scientist]].<ref name="a">{{cite book|title=Turing|year=2012}}</ref> He was born in [[London]].<!-- hidden remark -->

== Early life ==
Turing went to [[Sherborne School]] in 1926. He read mathematics at [[King's College, Cambridge|King's College]].
[[File:Turing.jpg|thumb|Turing at [[Sherborne]] in 1928]]
{| class="wikitable"
|-
! Year !! Event
|-
| 1936 || On Computable Numbers
|}

== References ==
{{reflist}}

== External links ==
* [https://example.org A site]

[[Category:1912 births]]
"""  # noqa: E501 (markup lines as an article has them)


# As Wikimedia names its numbered parts: the README's glob '*.xml*.bz2' selects it.
PART_FILE = "enwiki-20240101-pages-articles1.xml-p10p30302.bz2"
# As Wikimedia names the one-file dump and its index.
MULTISTREAM = "enwiki-20240101-pages-articles-multistream.xml.bz2"
MULTISTREAM_INDEX = "enwiki-20240101-pages-articles-multistream-index.txt.bz2"

PAGES = [
    page("Alan Turing", ARTICLE),
    page("Turing", "#REDIRECT [[Alan Turing]]", redirect="Alan Turing"),
    page("Talk:Alan Turing", "== Question ==\nIs this right? ~~~~", ns=1),
    page("Mercury", "'''Mercury''' may refer to:\n* [[Mercury (planet)]]\n{{disambiguation}}"),
]


def articles(n):
    """`n` article pages (titles "Article 0", ...)."""
    return [page(f"Article {i}", ARTICLE, page_id=i + 1) for i in range(n)]


def write(path, pages=PAGES, streams=1, compression=None):
    return wiki_sample.write(path, pages, streams, compression)


def write_multistream(folder, n=300, pages_per_stream=10, index=True, first_id=1):
    """A multistream dump of `n` articles and, among them, a redirect, a
    talk page and a disambiguation page (page ids from `first_id` on),
    named as Wikimedia names it in `folder`, its index beside it with
    `index`; returns the dump's path."""
    pages = [page(f"Article {i}", ARTICLE, page_id=first_id + i) for i in range(n)]
    for k, skipped in enumerate(PAGES[1:]):
        skipped = skipped.replace("<id>1</id>", f"<id>{first_id + n + k}</id>")
        pages.insert(n * (k + 1) // 4, skipped)
    index_path = f"{folder}/{MULTISTREAM_INDEX}" if index else None
    return wiki_sample.write_multistream(
        f"{folder}/{MULTISTREAM}", pages, pages_per_stream, index_path
    )
