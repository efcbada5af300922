"""MediaWiki markup to prose, with regular expressions and a bracket scanner
rather than a parser: on real pages a full parse (mwparserfromhell) took
about 20 times as long and left more markup in the text
(docs/results.md#corpus-preparation-cpu).

Templates and tables (nested in each other or not), references, math,
galleries and other tags whose content is not prose, file and category
links, comments, headings, lists and the sections after the article's
prose ("References", "See also", ...) go; links keep their text, a few
templates that stand for words in a sentence keep theirs (`{{convert|5|km}}`
is "5 km", `{{lang|fr|la ville}}` "la ville"), other tags keep their content.
No template is expanded: words other templates would show are lost, as with
WikiExtractor's --no-templates. Disambiguation pages are told apart here,
redirects and other namespaces by the reader (`sources`), so that all are
skipped and counted. `leftovers` counts the markup left in the output, for
the tests and `tools/benchmark_prepare.py`."""

import html
import re

# Tags whose content is not prose; the content of other tags is kept.
DROPPED_TAGS = (
    "ref references math chem ce gallery timeline score syntaxhighlight source pre "
    "imagemap mapframe maplink graph templatedata poem hiero table".split()
)
# Link namespaces that are not text (files, categories).
DROPPED_LINKS = frozenset({"file", "image", "media", "category"})
# Sections that end an article's prose.
END_SECTIONS = frozenset(
    {
        "references",
        "notes",
        "see also",
        "external links",
        "further reading",
        "bibliography",
        "sources",
        "footnotes",
        "citations",
        "notes and references",
        "references and notes",
        "works cited",
    }
)
DISAMBIGUATION_TEMPLATES = frozenset(
    {"disambiguation", "disambig", "dab", "disamb", "hndis", "geodis", "set index article"}
)
# Templates that stand for words in running text, by what they show: their
# first, second or last unnamed parameter, or a value and its unit. Every
# other template is dropped with its parameters.
FIRST, SECOND, LAST, QUANTITY, AS_OF = "first", "second", "last", "quantity", "as of"
KEPT_TEMPLATES = {
    **dict.fromkeys(["convert", "cvt", "val"], QUANTITY),
    **dict.fromkeys(["lang", "lang2"], SECOND),
    **dict.fromkeys(["transl", "transliteration"], LAST),
    **dict.fromkeys(
        "nowrap nobr small smaller sc smallcaps math mvar var em strong abbr nihongo "
        "keypress vanchor ill".split(),
        FIRST,
    ),
    "as of": AS_OF,
}
# Words between two values in a range: {{convert|5|to|10|km}}.
RANGE_WORDS = frozenset({"-", "–", "to", "and", "or", "x", "by", "+/-", "&"})

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_TEMPLATE_START = re.compile(r"\{\{\s*([^{}|]*?)\s*[|}]")
# Patterns of whole lines start with "\n" (the text is given one first):
# a search for a character is fast, one for the start of a line is not.
_HEADING = re.compile(r"\n=[^\n]*")
_DROPPED_START = re.compile(rf"<({'|'.join(DROPPED_TAGS)})\b[^>]*?(/?)>", re.I)
_DROPPED_END = {tag: re.compile(rf"</{tag}\s*>", re.I) for tag in DROPPED_TAGS}
# Template and table brackets; a table opens and closes at the start of a
# line (`|}}` there closes a template, not a table).
_BRACKET = re.compile(r"\{\{|\}\}|\n[ \t:]*\{\||\n[ \t]*\|\}(?!\})")
_TEMPLATE_NAME = re.compile(r"[^{}|]*")
_PARAMETER_BRACKET = re.compile(r"\{\{|\}\}|\[\[|\]\]|\|")
# A link holds no other link; single brackets may be in a caption ("[above]").
_LINK = re.compile(r"\[\[([^\[\]]*(?:(?:\[(?!\[)|\](?!\]))[^\[\]]*)*)\]\]")
_INTERLANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z]+)*")
_EXTERNAL_LINK = re.compile(
    r"\[(?:(?:[a-z][a-z0-9+.-]*:)?//|mailto:)[^\s\[\]]*(?:[ \t]+([^\[\]\n]*))?\]", re.I
)
# Lines that are not prose once templates and tables are gone: headings,
# list items, definition terms, rules, table rows left by broken markup.
_NOT_PROSE_LINE = re.compile(r"\n(?:[ \t:]*[*#;]|=|-{4}|[ \t]*[|!])[^\n]*")
_INDENT = re.compile(r"\n[ \t]*:+")
_QUOTE_MARK = re.compile(r"('{2,})")
_LINE_BREAK_TAG = re.compile(r"<br\b[^<>]*>", re.I)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_STRAY_BRACES = re.compile(r"\[\[|\]\]|\{\{|\}\}")
# What removed templates leave around them: "( )", "( ; from Greek",
# "word ,", ", ,". Each pattern starts with a character that is rare in
# prose (or a single space), so that searching for it is fast.
_EMPTY_BRACKETS = re.compile(r"\([^()\w\n]*\)|\[[^\[\]\w\n]*\]")
_AFTER_OPENING_BRACKET = re.compile(r"([(\[])[ ,;:]+")
_BEFORE_CLOSING_BRACKET = re.compile(r"[,;:]+ ?(?=[)\]])")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" (?=[,.;:!?](?:\s|$)|[)\]])")
_REPEATED_COMMAS = re.compile(r",(?: ?,)+")
_LETTER = re.compile(r"[^\W\d_]")


def parse(text):
    """The markup without its HTML comments (a commented-out template does
    not make a disambiguation page, a commented-out heading no section)."""
    return _COMMENT.sub("", text) if "<!--" in text else text


def is_disambiguation(title, code):
    """Whether the page lists the articles a title may mean: by its title,
    or by a disambiguation template anywhere in `code` (from `parse`)."""
    if title.lower().endswith("(disambiguation)"):
        return True
    for name in _TEMPLATE_START.findall(code):
        name = name.lower()
        if name in DISAMBIGUATION_TEMPLATES or name.endswith("disambiguation"):
            return True
    return False


def paragraphs(code):
    """The article's prose paragraphs (one a line), markup removed."""
    text = _prose_sections("\n" + code)
    text = _without_dropped_elements(text)
    text = _without_templates(text)
    text = _links_to_text(text)
    text = _EXTERNAL_LINK.sub(lambda link: link.group(1) or "", text)
    text = _NOT_PROSE_LINE.sub("\n", text)
    text = _INDENT.sub("\n", text)
    if "''" in text:  # before tags go: ''x''<sub>''i''</sub> is no run of four
        text = "\n".join(map(_without_quote_marks, text.split("\n")))
    text = _LINE_BREAK_TAG.sub(" ", text)
    text = _TAG.sub("", text)
    text = _MAGIC_WORD.sub("", text)
    text = _STRAY_BRACES.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    text = _EMPTY_BRACKETS.sub("", text)
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    text = _tidy_punctuation(text)
    return [line for line in text.split("\n") if _LETTER.search(line)]


def _without_quote_marks(line):
    """`line` without its bold and italic marks, apostrophes kept, as
    MediaWiki reads them: four quotes are an apostrophe and a bold mark;
    where bold and italic marks are both odd in number, one bold mark is an
    apostrophe and an italic mark (''Hamlet'''s)."""
    if "''" not in line:
        return line
    parts = _QUOTE_MARK.split(line)
    marks, kept = parts[1::2], []
    for i, mark in enumerate(marks):
        extra = len(mark) - 3 if len(mark) == 4 else max(0, len(mark) - 5)
        kept.append("'" * extra)
        marks[i] = mark[extra:]
    italic = sum(len(mark) in (2, 5) for mark in marks)
    bold = sum(len(mark) in (3, 5) for mark in marks)
    if italic % 2 and bold % 2:
        split = _bold_mark_to_split(parts, marks)
        if split is not None:
            kept[split] += "'"
    parts[1::2] = kept
    return "".join(parts)


def _bold_mark_to_split(parts, marks):
    """MediaWiki's choice: the first bold mark after a one-letter word
    (l'''amour), else after a longer word, else after a space."""
    after_word = after_space = None
    for i, mark in enumerate(marks):
        if mark != "'''":
            continue
        before = "".join(parts[: 2 * i + 1])[-2:].rjust(2)
        if before[1] == " ":
            after_space = i if after_space is None else after_space
        elif before[0] == " ":
            return i
        elif after_word is None:
            after_word = i
    return after_word if after_word is not None else after_space


def _prose_sections(code):
    """`code` up to the first heading of a section that ends the prose."""
    for heading in _HEADING.finditer(code):
        title = heading.group().strip()
        if title.endswith("="):
            title = re.sub(r"[\[\]'{}]", "", title.strip("=")).strip().lower()
            if title in END_SECTIONS:
                return code[: heading.start()]
    return code


def _without_dropped_elements(text):
    """`text` without the elements of DROPPED_TAGS, content and all. An
    opening tag never closed stays (tags go later), as MediaWiki shows it."""
    pieces, done = [], 0
    unclosed_from = {}  # tag: a position after which it is never closed
    for start in _DROPPED_START.finditer(text):
        tag = start.group(1).lower()
        if start.start() < done or start.end() >= unclosed_from.get(tag, len(text) + 1):
            continue  # inside an element dropped, or never closed
        if start.group(2):  # <ref name="a" />
            end = start.end()
        else:
            close = _DROPPED_END[tag].search(text, start.end())
            if close is None:
                unclosed_from[tag] = start.end()
                continue
            end = close.end()
        pieces.append(text[done : start.start()])
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _without_templates(text):
    """`text` without templates and tables; those of KEPT_TEMPLATES leave
    their words. An opening `{{` never closed is text, as MediaWiki shows
    it; a table never closed runs to the end."""
    pieces, done = [], 0
    for start, end, bracket in _outermost_brackets(text):
        pieces.append(text[done:start])
        if bracket == "{{":
            pieces.append(_template_words(text[start + 2 : end - 2]))
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _outermost_brackets(text):
    """[(start, end, opening bracket)] of the templates and tables that no
    other holds, in order."""
    stack = []  # (opening bracket, where it starts), not yet closed
    spans = []
    for match in _BRACKET.finditer(text):
        bracket = match.group().lstrip("\n \t:")
        if bracket in ("{{", "{|"):
            stack.append((bracket, match.start()))
            continue
        opening = "{{" if bracket == "}}" else "{|"
        depth = next((i for i in range(len(stack) - 1, -1, -1) if stack[i][0] == opening), None)
        if depth is None:
            continue  # a closing bracket without its opening one stays text
        start = stack[depth][1]
        del stack[depth:]  # with the brackets inside it never closed
        while spans and spans[-1][0] >= start:
            spans.pop()  # held by this one
        spans.append((start, match.end(), opening))
    table = next((start for bracket, start in stack if bracket == "{|"), None)
    if table is not None:
        while spans and spans[-1][0] >= table:
            spans.pop()
        spans.append((table, len(text), "{|"))
    return spans


def _template_words(inside):
    """What a template shows in running text: its words if it is one of
    KEPT_TEMPLATES, else nothing."""
    name = _TEMPLATE_NAME.match(inside).group().strip().lower().replace("_", " ")
    shows = KEPT_TEMPLATES.get(name)
    if shows is None and name.startswith("lang-"):
        shows = FIRST
    if shows is None:
        return ""
    values = _unnamed_parameters(inside)
    if shows == AS_OF:
        words = ["As of", *values[:1]]
    elif shows == QUANTITY:  # the value (or range), then the unit but for {{val}}
        count = 3 if len(values) > 3 and values[1] in RANGE_WORDS else 1
        words = values[: count + (name != "val")]
    else:
        words = {FIRST: values[:1], SECOND: values[1:2], LAST: values[-1:]}[shows]
    return _without_templates(" ".join(words))


def _unnamed_parameters(inside):
    """A template's unnamed parameters (`1=` counts as one), stripped:
    split at the bars outside nested links and templates."""
    parts, depth, start = [], 0, 0
    for match in _PARAMETER_BRACKET.finditer(inside):
        bracket = match.group()
        if bracket == "|":
            if depth == 0:
                parts.append(inside[start : match.start()])
                start = match.end()
        else:
            depth = max(0, depth + (1 if bracket in ("{{", "[[") else -1))
    parts.append(inside[start:])
    values = []
    for part in parts[1:]:
        key, equals, value = part.partition("=")
        if not equals or "[" in key or "{" in key:
            values.append(part.strip())
        elif key.strip().isdigit():
            values.append(value.strip())
    return values


def _links_to_text(text):
    """Links as the words they show; file and category links go. Links in
    a file's caption are replaced first, so the file link is then found
    whole."""
    for _ in range(3):  # links nest only in file captions
        if "[[" not in text:
            break
        text = _LINK.sub(_link_words, text)
    return text


def _link_words(match):
    target, bar, label = match.group(1).partition("|")
    target = target.strip()
    if "\n" in target:
        return match.group()  # not a link: brackets around lines
    visible = target.startswith(":")  # [[:Category:X]] is a plain link
    target = target.lstrip(":")
    namespace, colon, rest = target.partition(":")
    namespace = namespace.strip().lower()
    if colon and not visible:
        if namespace in DROPPED_LINKS:
            return ""
        if not bar and _INTERLANGUAGE.fullmatch(namespace):
            return ""  # [[fr:Paris]]: the article in another language
    if not bar:
        return target
    if label.strip():
        return label
    # The "pipe trick": [[Paris (band)|]] shows "Paris".
    return re.sub(r"\s*\(.*\)$", "", rest if colon else target)


def _tidy_punctuation(text):
    """Removes what dropped templates and references leave around them,
    in text whose spaces are single: punctuation opening or closing a
    bracket, a space before punctuation, repeated commas."""
    text = _AFTER_OPENING_BRACKET.sub(r"\1", text)
    text = _BEFORE_CLOSING_BRACKET.sub("", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub("", text)
    return _REPEATED_COMMAS.sub(",", text)


# Markup left in output lines, by kind: a line counts once per kind.
LEFTOVERS = {
    "table pipes": re.compile(r"\|"),
    "tags": re.compile(r"<[A-Za-z/]"),
    "empty brackets": re.compile(r"\([^()\w]*\)|\[[^\[\]\w]*\]"),
    "quote runs": re.compile(r"''"),
    "link and template braces": re.compile(r"\[\[|\]\]|\{\{|\}\}"),
    "entities": re.compile(r"&(?:[A-Za-z]+|#[0-9]+|#x[0-9A-Fa-f]+);"),
    "punctuation only": re.compile(r"^[^\w]*$"),
}


def leftovers(lines):
    """{kind: lines holding that kind of markup} over `lines`, for each
    kind of LEFTOVERS."""
    return {
        kind: sum(1 for line in lines if pattern.search(line))
        for kind, pattern in LEFTOVERS.items()
    }
