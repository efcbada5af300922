"""Markup to prose on real MediaWiki markup."""

from tests.trainers.bert.data.text import wiki_dump
from trainers.bert.data.text import wikitext


def test_article_markup_to_prose():
    assert wikitext.paragraphs(wikitext.parse(wiki_dump.ARTICLE)) == [
        "Alan Turing was an English maths scholar and computer scientist. He was born in London.",
        "Turing went to Sherborne School in 1926. He read mathematics at King's College.",
    ]


def test_disambiguation_pages_are_told_apart():
    assert wikitext.is_disambiguation(
        "Mercury", wikitext.parse("may refer to:\n{{Disambiguation|geo}}")
    )
    assert wikitext.is_disambiguation("Java (disambiguation)", wikitext.parse("x"))
    assert not wikitext.is_disambiguation("Alan Turing", wikitext.parse(wiki_dump.ARTICLE))


def test_math_galleries_and_html_tags():
    markup = """Energy is <math>E = mc^2</math> here.<gallery>
File:A.jpg|One
File:B.jpg|Two
</gallery> Some <span style="color:red">tagged</span> <b>bold</b> words.<br/> End.

== See also ==
* [[Physics]]
"""
    # Math and galleries go, the text inside other tags stays, the sections
    # after the prose go.
    assert wikitext.paragraphs(wikitext.parse(markup)) == [
        "Energy is here. Some tagged bold words. End."
    ]
