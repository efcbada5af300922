"""Markup to prose: on real English Wikipedia pages (pages/, credited in
its README) no markup is left and the prose is kept; then each construct on
its own."""

import functools
import pathlib
import time
import xml.etree.ElementTree as ET

import pytest

from tests.trainers.bert.data.text import wiki_dump
from trainers.bert.data.text import wikitext

SAMPLE = pathlib.Path(__file__).parent / "pages" / "enwiki-sample.xml"
ARTICLES = [
    "Albedo",
    "Academy Award for Best Production Design",
    "Actrius",
    "Allan Dwan",
    "Arithmetic mean",
    "American Football Conference",
    "Aruba",
]
# Sentences of each article as a reader sees them, the links' text and the
# templates' words among them; the removed markup is named beside.
KEPT = {
    "Albedo": [
        # a formula after the colon
        "The correlation between astronomical (geometric) albedo, absolute magnitude and "
        "diameter is:",
    ],
    "Academy Award for Best Production Design": [
        "The Academy Awards are the oldest awards ceremony for achievements in motion pictures.",
    ],
    "Actrius": [
        "Actresses (Catalan: Actrius) is a 1997 Catalan language Spanish drama film produced and "
        "directed by Ventura Pons and based on the award-winning stage play E.R. by Josep Maria "
        "Benet i Jornet.",
    ],
    "Allan Dwan": [
        # an infobox before, bold around the name
        "Allan Dwan (3 April 1885 – 28 December 1981) was a pioneering Canadian-born American "
        "motion picture director, producer and screenwriter.",
        "Dwan has a star on the Hollywood Walk of Fame at 6263 Hollywood Boulevard.",
    ],
    "Arithmetic mean": [
        # a pronunciation template in brackets, a reference
        "In mathematics and statistics, the arithmetic mean, or simply the mean or average when "
        "the context is clear, is the sum of a collection of numbers divided by the number of "
        "numbers in the collection.",
        "(See summation for an explanation of the summation operator).",
        "For example, let us consider the monthly salary of 10 employees of a firm: 2500, 2700, "
        "2400, 2300, 2550, 2650, 2750, 2450, 2600, 2400. The arithmetic mean is",
    ],
    "American Football Conference": [
        "The American Football Conference (AFC) is one of the two conferences of the National "
        "Football League (NFL).",
    ],
    "Aruba": [
        # unit conversions, three pronunciation templates
        "Aruba is a constituent country of the Kingdom of the Netherlands in the southern "
        "Caribbean Sea, located about 1600 km west of the main part of the Lesser Antilles and "
        "29 km north of the coast of Venezuela.",
    ],
}
# Text of tables, infoboxes, references and the sections after the prose.
DROPPED = {
    "Academy Award for Best Production Design": ["Cedric Gibbons", "Most Nominations"],
    "Actrius": ["Tomàs Pladevall", "Canal+"],  # infobox
    "Arithmetic mean": ["Jacobs", "W. H. Freeman", "\\frac"],  # a reference, a formula
    "Aruba": ["Britannica", "AWG"],  # a reference, the infobox
    "Allan Dwan": ["Pauline Bush"],  # infobox
}


@functools.cache
def real_pages():
    """{title: markup} of the sample dump's pages."""
    root = ET.parse(SAMPLE).getroot()
    return {
        page.findtext("{*}title"): page.findtext("{*}revision/{*}text")
        for page in root.findall("{*}page")
    }


def prose(markup):
    return wikitext.paragraphs(wikitext.parse(markup))


@pytest.mark.parametrize("title", ARTICLES)
def test_no_markup_is_left_on_real_pages(title):
    lines = prose(real_pages()[title])
    left = {
        kind: [line for line in lines if pattern.search(line)]
        for kind, pattern in wikitext.LEFTOVERS.items()
    }
    assert {kind: found for kind, found in left.items() if found} == {}
    assert wikitext.leftovers(lines) == dict.fromkeys(wikitext.LEFTOVERS, 0)


@pytest.mark.parametrize("title", ARTICLES)
def test_real_pages_keep_their_prose(title):
    lines = prose(real_pages()[title])
    for sentence in KEPT[title]:
        assert any(sentence in line for line in lines), sentence
    for text in DROPPED.get(title, []):
        assert not [line for line in lines if text in line], text
    # Most of the article is prose: more than the sentences checked.
    assert sum(len(line) for line in lines) > 3 * sum(len(s) for s in KEPT[title])


def test_the_sample_holds_a_redirect_and_a_disambiguation_page():
    pages = real_pages()
    assert sorted(pages) == sorted([*ARTICLES, "Ada", "AccessibleComputing"])
    assert wikitext.is_disambiguation("Ada", wikitext.parse(pages["Ada"]))
    for title in ARTICLES:
        assert not wikitext.is_disambiguation(title, wikitext.parse(pages[title])), title
    assert prose(pages["AccessibleComputing"]) == []  # "#REDIRECT [[...]]"


def test_leftovers_are_counted_by_kind():
    lines = [
        "a | b",
        "<ref>x",
        "x </span>",
        "word () more [ ]",
        "''quoted''",
        "[[link]] {{t}}",
        "a&nbsp;b &#160;",
        "—, .",
        "Clean prose (with brackets) & an ampersand; [sic] too.",
    ]
    assert wikitext.leftovers(lines) == {
        "table pipes": 1,
        "tags": 2,
        "empty brackets": 1,
        "quote runs": 1,
        "link and template braces": 1,
        "entities": 1,
        "punctuation only": 1,
    }


def test_article_markup_to_prose():
    assert prose(wiki_dump.ARTICLE) == [
        "Alan Turing was an English maths scholar and computer scientist. He was born in London.",
        "Turing went to Sherborne School in 1926. He read mathematics at King's College.",
    ]


def test_disambiguation_pages_are_told_apart():
    assert wikitext.is_disambiguation(
        "Mercury", wikitext.parse("may refer to:\n{{Disambiguation|geo}}")
    )
    assert wikitext.is_disambiguation("Java (disambiguation)", wikitext.parse("x"))
    assert wikitext.is_disambiguation("Aa", wikitext.parse("'''Aa''' may be:\n{{Geodis}}"))
    assert not wikitext.is_disambiguation("Alan Turing", wikitext.parse(wiki_dump.ARTICLE))
    # A commented-out template does not count.
    assert not wikitext.is_disambiguation("X", wikitext.parse("<!-- {{disambiguation}} -->"))


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
    assert prose(markup) == ["Energy is here. Some tagged bold words. End."]


@pytest.mark.parametrize(
    "markup, expected",
    [
        ("about {{convert|1600|km}} west", "about 1600 km west"),
        ("{{convert|5|to|10|km|mi}} long", "5 to 10 km long"),
        ("named {{lang|fr|la ville}} or {{lang-nl|Aruba}}", "named la ville or Aruba"),
        ("{{As of|2010}}, it grew.", "As of 2010, it grew."),
        ("in {{nowrap|[[New York]] {{convert|3|m}}}} high", "in New York 3 m high"),
        ("{{transl|ar|ALA|al-Jazāʼir}} is", "al-Jazāʼir is"),
        ("a {{citation needed|date=May 2010}} b {{sfn|Smith|2001|p=3}}.", "a b."),
    ],
)
def test_templates_that_stand_for_words_keep_them(markup, expected):
    assert prose(markup) == [expected]


@pytest.mark.parametrize(
    "markup, expected",
    [
        # nested templates, and a table inside a template
        ("A {{a|{{b|c}}|\n{|\n| x || y\n|}\n}} B.", ["A B."]),
        # a table with a template inside, then prose
        ('{| class="wikitable"\n|-\n| {{flag|Aruba}} || 1\n|}\nAfter.', ["After."]),
        # "|}}" at the start of a line closes a template, not a table
        ("{{Infobox\n| name = X\n|}}Text.", ["Text."]),
        # an opening pair never closed is text, as MediaWiki shows it
        ("Broken {{ here. Still prose.", ["Broken here. Still prose."]),
        # a table never closed runs to the end
        ("Before.\n{|\n| cell", ["Before."]),
    ],
)
def test_templates_and_tables_nest_and_break(markup, expected):
    assert prose(markup) == expected


@pytest.mark.parametrize(
    "markup, expected",
    [
        ("[[Paris]] and [[Lyon|the city]]s.", "Paris and the citys."),
        ("[[Paris (band)|]] played.", "Paris played."),
        ("[[:Category:Cities|cities]] [[Category:X]] [[fr:Paris]]", "cities"),
        ("[[wikt:word|word]] [[Help:Contents]]", "word Help:Contents"),
        ("See [http://example.org the site] or [http://example.org].", "See the site or."),
        (
            "A.[[File:A.jpg|thumb|A [[b|B]] [above] caption\nover lines]] Next.",
            "A. Next.",
        ),
    ],
)
def test_links_keep_their_words(markup, expected):
    assert prose(markup) == [expected]


def test_lines_that_are_not_prose():
    markup = """Lead, {{IPA|x}} ({{IPA|x}}; {{IPA|y}}) and ( ; from Greek) text.
* a list item
# a numbered one
; a term
: an indented line
----
== Heading ==
'''Bold''' and ''italic'' and l''''amour''''.
''Hamlet'''s end.&nbsp;&ndash; done
''x''<sub>''i''</sub> is a variable.
 1
&mdash;
__NOTOC__
== External links ==
Not prose.
"""
    assert prose(markup) == [
        "Lead, and (from Greek) text.",
        "an indented line",
        "Bold and italic and l'amour'.",
        "Hamlet's end. – done",
        "xi is a variable.",
    ]


@pytest.mark.parametrize(
    "markup",
    ["{{" * 20000 + "x", "<ref>" * 20000 + "x", "[http://" * 20000, "[[" * 20000, "\n=" * 20000],
    ids=["templates", "references", "external links", "links", "headings"],
)
def test_broken_markup_takes_linear_time(markup):
    # Each opening never closed is looked at once, not once per later one:
    # about 0.02 s here, where rescanning took many seconds.
    start = time.perf_counter()
    prose(markup)
    assert time.perf_counter() - start < 1.0
