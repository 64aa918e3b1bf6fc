r"""Every piece of escaping dagprop's diagrams need, in one place.

A diagram mixes three kinds of DOT text, each with its own rules:

* **HTML-like labels** (``label=<...>``), where node names, op names and numbers are
  shown. Graphviz parses them as XML, so ``& < > "`` must become entities; it
  then expands escString codes in their text too (``\N`` becomes the node's
  identifier), so each backslash is doubled. Braces and bars mean nothing there.
* **Quoted strings** (``tooltip="..."``, colours, styles). Graphviz reads
  ``\"`` as a quote and applies *escString* rules to some attributes (``\N`` is
  the node name, ``\n`` a line break), and different Graphviz versions expand
  backslashes in tooltips a different number of times. So tooltips never carry
  a backslash: a literal one is drawn as the look-alike U+29F5 (⧵).
* **Identifiers** of nodes and clusters. dagprop generates them (``n0``,
  ``cluster_1``), so a user's string never becomes an identifier.

The player's page is plain HTML, not DOT: its title, heading and captions use
:func:`html_page`, which leaves backslashes alone (a browser gives them no meaning).

In every kind, control characters (which XML forbids and would make the SVG
unreadable) are shown as their Unicode "control pictures" (``\n`` as ␊), except
where a line break is meant: a tooltip's ``\n`` breaks its line, and so does a
title's (:func:`html_lines`).
``graphviz.quoting.quote`` alone is not enough: it leaves ``<...>`` and record
syntax such as ``{ } |`` alone and cannot express a trailing backslash.
"""

from __future__ import annotations

from html import escape as html_escape
import re

__all__ = ["html", "html_lines", "html_page", "srcdoc", "tooltip", "quote", "visible"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
BACKSLASH_LOOKALIKE = "\u29f5"


def _picture(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return "\ufffd"


def visible(text: object) -> str:
    r"""``text`` as a string whose control characters are shown as visible symbols.

    Tabs, newlines and other control characters become their Unicode control
    pictures (``\n`` → ␊), and lone surrogates (which cannot be encoded) become
    U+FFFD. Everything else is kept.

    Parameters
    ----------
    text : object
        Converted with ``str`` first.

    Returns
    -------
    str

    Examples
    --------
    >>> visible("a\nb\tc")
    'a␊b␉c'
    >>> visible("\x00\x7f")
    '␀␡'
    >>> visible(3.5)
    '3.5'
    """
    return _SURROGATE.sub("\ufffd", _CONTROL.sub(_picture, str(text)))


def html(text: object) -> str:
    r"""Escape ``text`` for the inside of an HTML-like label (``label=<...>``).

    The result shows ``text`` literally: markup, entities, quotes, DOT syntax
    and escString codes such as ``\N`` have no effect (backslashes are doubled,
    because Graphviz reads ``\\`` in label text as one backslash).

    Parameters
    ----------
    text : object
        Converted with ``str`` first.

    Returns
    -------
    str

    Examples
    --------
    >>> print(html('<b>"x"&{y}|z\\'))
    &lt;b&gt;&quot;x&quot;&amp;{y}|z\\
    >>> print(html("\\N is not the node name"))
    \\N is not the node name
    >>> print(html("&amp; stays literal"))
    &amp;amp; stays literal
    >>> print(html("</TD></TR></TABLE>>"))
    &lt;/TD&gt;&lt;/TR&gt;&lt;/TABLE&gt;&gt;
    >>> print(html("line\nbreak"))
    line␊break
    >>> print(html("it's"))
    it&#39;s
    """
    text = visible(text).replace("\\", "\\\\")
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def html_lines(text: object, separator: str = "<BR/>") -> str:
    r"""Escape ``text`` for an HTML-like label as :func:`html` does, but break its lines.

    Each ``\n`` (or ``\r\n``) becomes ``separator``, a line break of the label; every line
    is escaped by :func:`html`, so markup, entities, escString codes and other control
    characters stay literal. Only for text that may span lines on purpose: titles.

    Parameters
    ----------
    text : object
        Converted with ``str`` first.
    separator : str
        The markup between lines: ``<BR/>`` (centred), or e.g. ``<BR ALIGN="LEFT"/>``.

    Returns
    -------
    str

    Examples
    --------
    >>> print(html_lines("first line\nsecond line"))
    first line<BR/>second line
    >>> print(html_lines("a\r\nb"))
    a<BR/>b
    >>> print(html_lines('<BR/>"&\\N\n\tend</B>>'))
    &lt;BR/&gt;&quot;&amp;\\N<BR/>␉end&lt;/B&gt;&gt;
    >>> print(html_lines("one\n\ntwo", separator='<BR ALIGN="LEFT"/>'))
    one<BR ALIGN="LEFT"/><BR ALIGN="LEFT"/>two
    >>> print(html_lines("no break\x0bhere"))
    no break␋here
    """
    return separator.join(html(line) for line in str(text).replace("\r\n", "\n").split("\n"))


def html_page(text: object) -> str:
    r"""Escape ``text`` for an HTML page (text or a quoted attribute value), not a DOT label.

    ``& < > " '`` become entities and control characters are shown as symbols, as in
    :func:`html`; backslashes are kept as they are, because only Graphviz, not a
    browser, reads them as escapes. Used for the player's title, heading and captions.
    ``text`` is converted with ``str`` first; the result is a ``str``.

    Examples
    --------
    >>> print(html_page('<b>"x"&y\\N\'s</b>'))
    &lt;b&gt;&quot;x&quot;&amp;y\N&#x27;s&lt;/b&gt;
    >>> print(html_page("a\nb"))
    a␊b
    """
    return html_escape(visible(text), quote=True)


def srcdoc(page: str) -> str:
    r"""A whole HTML page as the value of an iframe's ``srcdoc`` attribute.

    Unlike :func:`html_page`, newlines and other control characters are kept: they
    belong to the page (its script and style), and the browser unescapes the value.

    Examples
    --------
    >>> print(srcdoc('<p class="x">a & b</p>\n<script>1 < 2</script>'))
    &lt;p class=&quot;x&quot;&gt;a &amp; b&lt;/p&gt;
    &lt;script&gt;1 &lt; 2&lt;/script&gt;
    """
    return html_escape(page, quote=True)


def tooltip(text: object) -> str:
    r"""``text`` as a quoted DOT string for an escString attribute such as ``tooltip``.

    Includes the surrounding double quotes. Newlines in ``text`` become line
    breaks of the tooltip; other control characters are shown as symbols;
    a backslash is shown as ⧵ (U+29F5), because Graphviz versions expand
    backslashes in tooltips differently; ``& < > "`` become entities that
    Graphviz passes through to SVG unchanged.

    Parameters
    ----------
    text : object
        Converted with ``str`` first.

    Returns
    -------
    str

    Examples
    --------
    >>> print(tooltip('<b>"x"&{y}|z\\'))
    "&lt;b&gt;&quot;x&quot;&amp;{y}|z⧵"
    >>> print(tooltip("value\n[1. 2.]"))
    "value\n[1. 2.]"
    >>> print(tooltip("\\N is not the node name"))
    "⧵N is not the node name"
    >>> print(tooltip("tab\there"))
    "tab␉here"
    """
    lines = str(text).split("\n")
    escaped = []
    for line in lines:
        line = visible(line.replace("\\", BACKSLASH_LOOKALIKE))
        escaped.append(line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                       .replace('"', "&quot;"))
    return '"' + "\\n".join(escaped) + '"'


def quote(text: object) -> str:
    r"""``text`` as a double-quoted DOT string (for attribute values such as colours and styles).

    Quotes and backslashes are escaped so the string always ends where it should,
    even when ``text`` ends with a backslash. Not for labels or tooltips: use
    :func:`html` or :func:`tooltip`, which also defuse markup and escString codes.

    Parameters
    ----------
    text : object
        Converted with ``str`` first.

    Returns
    -------
    str

    Examples
    --------
    >>> print(quote("#d62728"))
    "#d62728"
    >>> print(quote('say "hi"'))
    "say \"hi\""
    >>> print(quote("ends with \\"))
    "ends with \\"
    >>> print(quote("a\nb"))
    "a␊b"
    """
    text = visible(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
