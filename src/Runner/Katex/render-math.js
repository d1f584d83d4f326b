// Typesets a notebook page's formulas with the KaTeX inlined in the same page: nothing is fetched.
// Runner pages (src/Runner/HtmlReport.cs): Markdig has already found the formulas of the markdown cells and wrapped
//   each in <span class="math">\(...\)</span>, <span class="math display">\(...\)</span> ($$ within a line) or
//   <div class="math">\[...\]</div>; each is rendered in place, the last two in display mode.
// nbconvert pages (the template in nbconvert/): markdown cells keep $...$, $$...$$, \(...\) and \[...\] as text,
//   as MathJax expects; KaTeX's auto-render finds them there (only in markdown cells: never in code or outputs).
// Tolerant: a formula KaTeX rejects stays visible (unparsable: as its source in red; an unknown command: typeset with
// that command as red text), is marked class katex-error with KaTeX's message in its title, and is logged; the other
// formulas still render. <html data-katex="R rendered, E rejected"> records the count.
(function () {
  "use strict";
  function typeset() {
    if (typeof katex === "undefined") return;
    document.querySelectorAll(".cell.markdown .math").forEach(function (el) {
      var display = el.tagName === "DIV" || el.classList.contains("display");
      var tex = el.textContent.trim();
      if (/^\\[(\[][\s\S]*\\[)\]]$/.test(tex)) tex = tex.slice(2, -2);
      katex.render(tex, el, { displayMode: display, throwOnError: false });
    });
    if (typeof renderMathInElement !== "undefined") {
      document.querySelectorAll(".jp-MarkdownOutput, .text_cell_render").forEach(function (el) {
        renderMathInElement(el, {
          delimiters: [
            { left: "$$", right: "$$", display: true },
            { left: "\\[", right: "\\]", display: true },
            { left: "$", right: "$", display: false },
            { left: "\\(", right: "\\)", display: false },
          ],
          throwOnError: false,
        });
      });
    }
    // KaTeX renders a command it does not know as red text without an error: try every typeset formula again with
    // errors on, and mark those it rejects like the ones it could not parse at all.
    document.querySelectorAll(".katex").forEach(function (el) {
      var source = el.querySelector('annotation[encoding="application/x-tex"]');
      if (!source) return;
      try { katex.renderToString(source.textContent, { displayMode: !!el.closest(".katex-display"), throwOnError: true }); }
      catch (e) { el.classList.add("katex-error"); el.title = String(e.message || e); }
    });
    var errors = document.querySelectorAll(".katex-error");
    errors.forEach(function (e) {
      var source = e.querySelector('annotation[encoding="application/x-tex"]');
      console.warn("KaTeX rejected " + (source ? source.textContent : e.textContent) + ": " + e.title);
    });
    var rendered = document.querySelectorAll(".katex:not(.katex-error)").length;
    document.documentElement.setAttribute("data-katex", rendered + " rendered, " + errors.length + " rejected");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", typeset);
  else typeset();
})();
