#!/usr/bin/env python3
"""Judges one notebook HTML page after headless Chromium opened it (see .ci/math-check.sh); stdlib only.

  math-check.py PAGE.html DOM.html NETLOG.json

Fails (exit 1, one line per problem) unless
  - the page as written references nothing a browser fetches by itself: no script, style sheet, image, frame or font
    from a URL (inline script bodies are not read: KaTeX's code holds such strings), no @import, no url() but data:;
  - Chromium's network log shows no request from the page other than file: and data: (the browser's own background
    requests, whose isolation key is not the page's file:// origin, are not the page's);
  - the formulas typeset: in the DOM after the scripts ran, every formula the runner wrapped (class="math") is a
    KaTeX element (class="katex"), a page whose markdown had $, \\( or \\[ delimiters has KaTeX elements, no formula was
    rejected (class="katex-error", set by KaTeX on what it cannot parse and by the page's script on a formula using a
    command KaTeX does not know: its source and KaTeX's message are printed), and no $...$, \\(...\\) or \\[...\\]
    is left as text in any markdown cell.
Prints one summary line.
"""
import json
import re
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Rendered math, code and scripts are not prose: what is left in a markdown cell after them must hold no formula.
SKIP_CLASSES = {"katex", "katex-display", "katex-error"}
SKIP_TAGS = {"code", "pre", "script", "style", "svg", "math"}
FETCHING = {"script", "img", "iframe", "audio", "video", "source", "embed", "object", "link", "track", "input"}
RAW_FORMULA = re.compile(r"\$\$.+?\$\$|\$[^\s$][^$]*?\$|\\\(.+?\\\)|\\\[.+?\\\]", re.S)


class Page(HTMLParser):
    """Markdown cells' prose, formula and KaTeX counts, rejected formulas, and references a browser would fetch."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []          # (tag, in_markdown, skipping)
        self.cells = []          # prose text of each markdown cell
        self.wrapped = 0         # runner formulas (class="math ...") before the scripts ran
        self.katex = 0
        self.errors = []         # [title, text, MathML annotation (the TeX source)] of each katex-error
        self.fetches = []
        self._error = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        in_md, skipping = self.stack[-1][1:] if self.stack else (False, False)
        if ("cell" in classes and "markdown" in classes) or classes & {"jp-MarkdownOutput", "text_cell_render"}:
            if not in_md:
                self.cells.append("")
            in_md = True
        if "math" in classes and tag in ("span", "div"):
            self.wrapped += 1
        if "katex" in classes:
            self.katex += 1
        if "katex-error" in classes:
            self.errors.append([a.get("title") or "", "", ""])
            self._error = len(self.stack)  # its text is what the stack holds above this depth
        if classes & SKIP_CLASSES or tag in SKIP_TAGS:
            skipping = True
        if tag in FETCHING:
            for attr in ("src", "data") + (("href",) if tag == "link" else ()):
                value = (a.get(attr) or "").strip()
                if value and not value.startswith(("data:", "#")):
                    self.fetches.append(f"<{tag} {attr}={value[:80]}>")
        self._css(a.get("style") or "")
        if tag not in VOID:
            self.stack.append((tag, in_md, skipping))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        # Pop to the matching open tag (the DOM Chromium dumps is well formed; the page as written nearly so).
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break
        if self._error is not None and len(self.stack) <= self._error:
            self._error = None

    def handle_data(self, data):
        if self._error is not None:
            # A formula typeset with an unknown command: its source is the MathML annotation; unparsable: the text.
            part = 2 if self.stack and self.stack[-1][0] == "annotation" else 1
            self.errors[-1][part] += data
        if not self.stack:
            return
        tag, in_md, skipping = self.stack[-1]
        if tag == "style":
            self._css(data)
        if in_md and not skipping:
            self.cells[-1] += data

    def _css(self, css):
        for m in re.finditer(r"@import[^;]*|url\(\s*(?!['\"]?(?:data:|#))['\"]?[^)'\"]*", css):
            self.fetches.append(f"css {m.group(0)[:80]}")


def strip_inline_scripts(html):
    return re.sub(r"(<script\b(?![^>]*\bsrc)[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S | re.I)


def page_requests(netlog_path):
    with open(netlog_path, encoding="utf-8") as f:
        log = json.load(f)
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for e in log["events"]:
        p = e.get("params") or {}
        if e["type"] == start and str(p.get("network_isolation_key", "")).startswith("file://"):
            url = p.get("url", "")
            if not url.startswith(("file:", "data:", "blob:")):
                urls.append(url)
    return urls


def main(page_path, dom_path, netlog_path):
    name = page_path.rsplit("/", 1)[-1]
    with open(page_path, encoding="utf-8") as f:
        source = f.read()
    with open(dom_path, encoding="utf-8") as f:
        dom = f.read()
    problems = []

    before = Page()
    before.feed(strip_inline_scripts(source))
    problems += [f"references {x}, fetched at view time" for x in before.fetches]
    delimited = sum(1 for c in before.cells if RAW_FORMULA.search(c))

    requests = page_requests(netlog_path)
    problems += [f"requested {u}" for u in requests]

    after = Page()
    after.feed(dom)
    if before.wrapped and after.katex < before.wrapped:
        problems.append(f"{before.wrapped} formulas wrapped by the runner, only {after.katex} typeset by KaTeX")
    if (before.wrapped or delimited) and after.katex == 0:
        problems.append("formulas in the markdown, no KaTeX element after the scripts ran (the page did not typeset)")
    for title, text, annotation in after.errors:
        problems.append(f"KaTeX rejected {(annotation or text).strip()!r}: {title}")
    for i, cell in enumerate(after.cells):
        for m in RAW_FORMULA.finditer(cell):
            problems.append(f"markdown cell {i + 1}: formula left as source: {m.group(0)[:100]!r}")

    print(f"math-check: {name}: {after.katex} formulas typeset by KaTeX "
          f"({before.wrapped} wrapped by the runner; {delimited} markdown cells with formulas), "
          f"{len(after.errors)} rejected, {len(after.cells)} markdown cells, {len(requests)} page requests")
    for p in problems:
        print(f"math-check: FAILED: {name}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
