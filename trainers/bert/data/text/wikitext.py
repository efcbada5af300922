"""MediaWiki markup to prose, with mwparserfromhell (a maintained parser of
the markup, not regular expressions): templates, references, tables,
galleries, files, categories, comments, tags and headings go; links keep
their text; the sections after the article's prose ("References", "See
also", ...) are dropped; redirects, disambiguation pages and pages outside
the article namespace are told apart so they can be skipped and counted."""

import mwparserfromhell

# Tags whose content is not prose.
DROPPED_TAGS = frozenset(
    "ref references gallery math chem timeline score syntaxhighlight source code pre "
    "table imagemap mapframe graph templatedata poem hiero".split()
)
# Link namespaces that are not text (files, categories, other languages' wikis).
DROPPED_LINKS = ("file:", "image:", "media:", "category:")
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
    }
)
DISAMBIGUATION_TEMPLATES = frozenset(
    {"disambiguation", "disambig", "dab", "disamb", "hndis", "geodis", "set index article"}
)


def is_disambiguation(title, code):
    if title.lower().endswith("(disambiguation)"):
        return True
    for template in code.filter_templates(recursive=False):
        name = str(template.name).strip().lower()
        if name in DISAMBIGUATION_TEMPLATES or name.endswith("disambiguation"):
            return True
    return False


def parse(text):
    return mwparserfromhell.parse(text)


def paragraphs(code):
    """The article's prose paragraphs, markup removed."""
    kept = []
    for section in code.get_sections(flat=True, include_lead=True):
        headings = section.filter_headings(recursive=False)
        if headings and headings[0].title.strip_code().strip().lower() in END_SECTIONS:
            break
        for node in headings:
            _remove(section, node)
        for tag in section.filter_tags(recursive=True):
            if str(tag.tag).strip().lower() in DROPPED_TAGS:
                _remove(section, tag)
        for link in section.filter_wikilinks(recursive=True):
            if str(link.title).strip().lower().startswith(DROPPED_LINKS):
                _remove(section, link)
        text = section.strip_code(normalize=True, collapse=True, keep_template_params=False)
        for line in text.split("\n"):
            line = " ".join(line.split())
            if len(line) > 1:
                kept.append(line)
    return kept


def _remove(code, node):
    try:
        code.remove(node)
    except ValueError:  # inside a node removed before
        pass
