// A small Markdown renderer for model answers. It builds DOM nodes and puts every piece of model text into a text
// node, so no model output is ever parsed as HTML (no innerHTML anywhere). Covers what chat models write: fenced code,
// headings, lists (nested by indentation), block quotes, tables, rules, paragraphs, and inline code, bold, italic,
// strike-through and links (http, https and mailto only). An unclosed fence renders as code, so a streamed answer
// looks right while it is still arriving.
'use strict';

const Markdown = (() => {
  const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)/;
  const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
  const QUOTE = /^ {0,3}> ?/;
  const ITEM = /^( *)([-*+]|\d{1,9}[.)])\s+(.*)$/;
  const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;
  // Inline tokens, tried left to right: code span, bold, strike, italic, link, bare URL.
  const INLINE = new RegExp([
    '(`+)([^`]|[^`][\\s\\S]*?[^`])\\1(?!`)',
    '\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*',
    '(?<![\\w])__(?=\\S)([\\s\\S]*?\\S)__(?![\\w])',
    '~~(?=\\S)([\\s\\S]*?\\S)~~',
    '\\*(?=[^\\s*])([\\s\\S]*?[^\\s*])\\*',
    '(?<![\\w])_(?=[^\\s_])([\\s\\S]*?[^\\s_])_(?![\\w])',
    '\\[([^\\]\\n]+)\\]\\(\\s*([^)\\s]+)\\s*\\)',
    '(https?:\\/\\/[^\\s<>()]*[^\\s<>().,;:!?\'"*_`])',
  ].join('|'), 'g');

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function safeHref(url) {
    return /^(https?:\/\/|mailto:)/i.test(url) ? url : null;
  }

  function link(href, children) {
    const a = el('a');
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    a.append(...children);
    return a;
  }

  /** Inline Markdown of one block's text, as nodes; newlines become line breaks. */
  function inline(text) {
    const out = [];
    let last = 0;
    const re = new RegExp(INLINE);   // its own lastIndex: inline() recurses into bold, links…
    for (let m; (m = re.exec(text)) !== null;) {
      if (m.index > last) pushText(out, text.slice(last, m.index));
      if (m[1] !== undefined) out.push(el('code', null, m[2].replace(/^ (.*) $/s, '$1')));
      else if (m[3] !== undefined || m[4] !== undefined) out.push(wrap('strong', m[3] ?? m[4]));
      else if (m[5] !== undefined) out.push(wrap('del', m[5]));
      else if (m[6] !== undefined || m[7] !== undefined) out.push(wrap('em', m[6] ?? m[7]));
      else if (m[8] !== undefined) {
        const href = safeHref(m[9]);
        if (href) out.push(link(href, inline(m[8])));
        else pushText(out, m[0]);
      } else out.push(link(m[10], [document.createTextNode(m[10])]));
      last = re.lastIndex;
    }
    if (last < text.length) pushText(out, text.slice(last));
    return out;
  }

  function wrap(tag, text) {
    const node = el(tag);
    node.append(...inline(text));
    return node;
  }

  function pushText(out, text) {
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (i > 0) out.push(el('br'));
      if (line) out.push(document.createTextNode(line));
    });
  }

  function codeBlock(lang, code) {
    const box = el('div', 'code');
    const head = el('div', 'code-head');
    head.append(el('span', 'code-lang', lang || 'text'));
    const copy = el('button', 'copy', 'Copy');
    copy.type = 'button';
    head.append(copy);
    const pre = el('pre');
    pre.append(el('code', null, code));
    box.append(head, pre);
    return box;
  }

  function splitRow(line) {
    let s = line.trim();
    if (s.startsWith('|')) s = s.slice(1);
    if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
    return s.split(/(?<!\\)\|/).map(c => c.trim().replace(/\\\|/g, '|'));
  }

  function table(header, align, rows) {
    const wrapper = el('div', 'table-wrap');
    const t = el('table');
    const cell = (tag, text, i) => {
      const c = el(tag);
      if (align[i]) c.className = 'align-' + align[i];
      c.append(...inline(text ?? ''));
      return c;
    };
    const thead = el('thead');
    const hr = el('tr');
    header.forEach((h, i) => hr.append(cell('th', h, i)));
    thead.append(hr);
    const tbody = el('tbody');
    for (const r of rows) {
      const tr = el('tr');
      header.forEach((_, i) => tr.append(cell('td', r[i], i)));
      tbody.append(tr);
    }
    t.append(thead, tbody);
    wrapper.append(t);
    return wrapper;
  }

  function startsBlock(line, next) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line)
      || (line.includes('|') && next !== undefined && TABLE_SEP.test(next) && next.includes('-'));
  }

  /** Block Markdown as a fragment. */
  function blocks(lines) {
    const frag = document.createDocumentFragment();
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (!line.trim()) { i++; continue; }
      if ((m = FENCE.exec(line))) {
        const fence = m[1];
        const body = [];
        i++;
        const closes = l => { const t = l.trim(); return t.length >= fence.length && t === fence[0].repeat(t.length); };
        while (i < lines.length && !closes(lines[i])) body.push(lines[i++]);
        i++;   // the closing fence (or the end of a still-streaming answer)
        frag.append(codeBlock(m[2], body.join('\n')));
      } else if ((m = HEADING.exec(line))) {
        const h = el('h' + Math.min(6, m[1].length + 2));   // h1/h2 are the page's; answers start at h3
        h.append(...inline(m[2]));
        frag.append(h);
        i++;
      } else if (RULE.test(line)) {
        frag.append(el('hr'));
        i++;
      } else if (QUOTE.test(line)) {
        const body = [];
        while (i < lines.length && lines[i].trim() && QUOTE.test(lines[i])) body.push(lines[i++].replace(QUOTE, ''));
        const q = el('blockquote');
        q.append(blocks(body));
        frag.append(q);
      } else if ((m = ITEM.exec(line))) {
        i = list(lines, i, frag);
      } else if (line.includes('|') && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) && lines[i + 1].includes('-')) {
        const header = splitRow(line);
        const align = splitRow(lines[i + 1]).map(c => c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : '');
        i += 2;
        const rows = [];
        while (i < lines.length && lines[i].includes('|') && lines[i].trim()) rows.push(splitRow(lines[i++]));
        frag.append(table(header, align, rows));
      } else {
        const body = [line];
        i++;
        while (i < lines.length && lines[i].trim() && !startsBlock(lines[i], lines[i + 1])) body.push(lines[i++]);
        const p = el('p');
        p.append(...inline(body.join('\n')));
        frag.append(p);
      }
    }
    return frag;
  }

  /** A list starting at lines[i]; items hold their indented continuation lines (nested lists included). */
  function list(lines, i, frag) {
    const first = ITEM.exec(lines[i]);
    const indent = first[1].length;
    const ordered = /\d/.test(first[2]);
    const node = el(ordered ? 'ol' : 'ul');
    if (ordered && parseInt(first[2], 10) !== 1) node.start = parseInt(first[2], 10);
    while (i < lines.length) {
      const m = ITEM.exec(lines[i]);
      if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
      const body = [m[3]];
      i++;
      const inner = indent + m[2].length + 1;
      // Continuation: indented deeper than the marker, or a blank line followed by such a line.
      while (i < lines.length) {
        const l = lines[i];
        const deeper = l.length - l.trimStart().length > indent;
        if (l.trim() && deeper) { body.push(l.slice(Math.min(inner, l.length - l.trimStart().length))); i++; }
        else if (!l.trim() && i + 1 < lines.length && lines[i + 1].trim() && lines[i + 1].length - lines[i + 1].trimStart().length > indent) { body.push(''); i++; }
        else if (l.trim() && !startsBlock(l, lines[i + 1]) && !deeper && body.length && body[body.length - 1].trim()) { body.push(l); i++; }
        else break;
      }
      const li = el('li');
      if (body.length === 1) li.append(...inline(body[0]));
      else li.append(blocks(body));
      node.append(li);
      if (i < lines.length && !lines[i].trim() && i + 1 < lines.length && ITEM.test(lines[i + 1]) && ITEM.exec(lines[i + 1])[1].length === indent) i++;
    }
    frag.append(node);
    return i;
  }

  /** Renders Markdown text into a DocumentFragment. */
  function render(text) {
    return blocks(String(text).replace(/\r\n?/g, '\n').split('\n'));
  }

  return { render };
})();
