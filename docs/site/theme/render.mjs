// The charrnn course website theme: a MyST site template that renders itself.
//
// `myst build --html` builds the pages into MyST's JSON (the document tree of
// every page, with the math already typeset by KaTeX and the notebook outputs
// extracted), serves that JSON on a local "content server" and runs this
// script (template.yml, build.render) with two variables set:
//   CONTENT_CDN      the content server's URL: /config.json, /content/<slug>.json, /<asset>
//   BUILD_DIRECTORY  where the static site goes (myst's _build/html)
// and, from docs/site/build_site.py, CHARRNN_SITE_META: a JSON file with the
// site's title, the repository and each notebook's launch links.
//
// Every page becomes one flat file (index.html, 02_rnn_cell_from_scratch.html, ...)
// that links to the others, to its images and to the style sheets by relative
// paths, so the folder works from any web server and straight from the disk.
// No network is used: KaTeX's style sheet and fonts come from node_modules.

import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CDN = (process.env.CONTENT_CDN || "").replace(/\/$/, "");
const OUT = process.env.BUILD_DIRECTORY;
const ASSET_DIR = "build"; // images and other files the pages use
const STATIC_DIR = "_static"; // style sheets and fonts

if (!CDN || !OUT) {
  console.error("render.mjs runs from `myst build --html`, which sets CONTENT_CDN and BUILD_DIRECTORY");
  process.exit(2);
}

// ------------------------------------------------------------------ helpers
const warnings = new Set();
function warn(message) {
  if (!warnings.has(message)) console.error(`site theme: ${message}`);
  warnings.add(message);
}

function escapeHtml(text) {
  return String(text ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

async function fetchFromCdn(url, as = "json") {
  const response = await fetch(`${CDN}${url}`);
  if (!response.ok) throw new Error(`content server: ${response.status} for ${url}`);
  if (as === "json") return response.json();
  if (as === "text") return response.text();
  return Buffer.from(await response.arrayBuffer());
}

// Terminal output: drop colour codes, and keep what a terminal would show
// after carriage returns (progress bars redraw their line).
function terminalText(text) {
  const plain = String(text ?? "").replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
  return plain
    .split("\n")
    .map((line) => {
      const parts = line.split("\r").filter((part) => part !== "");
      return parts.length ? parts[parts.length - 1] : "";
    })
    .join("\n");
}

// ------------------------------------------------------ Python highlighting
const PY_KEYWORDS = new Set(
  ("False None True and as assert async await break class continue def del elif else except finally for " +
    "from global if import in is lambda nonlocal not or pass raise return try while with yield match case")
    .split(" "),
);
const PY_BUILTINS = new Set(
  ("print len range enumerate zip sorted sum min max abs round int float str list dict set tuple type " +
    "isinstance super open iter next map filter any all reversed repr format")
    .split(" "),
);
const PY_TOKEN = new RegExp(
  [
    String.raw`(?<comment>#[^\n]*)`,
    String.raw`(?<string>[rRbBfFuU]{0,2}(?:"""[\s\S]*?"""|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))`,
    String.raw`(?<magic>^[ \t]*[%!][^\n]*)`,
    String.raw`(?<decorator>@[A-Za-z_][\w.]*)`,
    String.raw`(?<number>\b\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?j?\b)`,
    String.raw`(?<word>[A-Za-z_]\w*)`,
  ].join("|"),
  "gm",
);

function highlightPython(code) {
  let html = "";
  let last = 0;
  for (const match of code.matchAll(PY_TOKEN)) {
    html += escapeHtml(code.slice(last, match.index));
    last = match.index + match[0].length;
    const groups = match.groups;
    let kind = null;
    if (groups.comment) kind = "c";
    else if (groups.string) kind = "s";
    else if (groups.magic) kind = "m";
    else if (groups.decorator) kind = "d";
    else if (groups.number) kind = "n";
    else if (PY_KEYWORDS.has(groups.word)) kind = "k";
    else if (PY_BUILTINS.has(groups.word)) kind = "b";
    html += kind ? `<span class="tok-${kind}">${escapeHtml(match[0])}</span>` : escapeHtml(match[0]);
  }
  return html + escapeHtml(code.slice(last));
}

// ---------------------------------------------------------------- rendering
// One page's rendering context: where internal links and assets point.
class Page {
  constructor(site, entry) {
    this.site = site;
    this.entry = entry;
    this.headings = []; // [{id, text}] of the level-2 headings, for "on this page"
  }

  // A URL of MyST's site ("/slug#x", "/hash.png") as a relative link of the static site.
  pageLink(url) {
    const [target, hash] = String(url).split("#");
    const slug = target.replace(/^\//, "");
    if (slug === "") return hash ? `#${hash}` : this.site.files.get(this.site.indexSlug);
    const file = this.site.files.get(slug);
    if (file) return hash ? `${file}#${hash}` : file;
    return null;
  }

  asset(url) {
    if (/^(https?:|data:)/.test(url)) return url;
    const name = String(url).replace(/^\//, "");
    this.site.assets.add(name);
    return `${ASSET_DIR}/${name}`;
  }
}

const TAGS = {
  emphasis: "em",
  strong: "strong",
  delete: "del",
  underline: "u",
  superscript: "sup",
  subscript: "sub",
  smallcaps: "span",
  blockquote: "blockquote",
  definitionList: "dl",
  definitionTerm: "dt",
  definitionDescription: "dd",
  summary: "summary",
  details: "details",
  span: "span",
  caption: "figcaption",
  legend: "div",
};

function children(node, page) {
  return (node.children ?? []).map((child) => render(child, page)).join("");
}

function idAttr(node) {
  const id = node.html_id ?? node.identifier;
  return id ? ` id="${escapeHtml(id)}"` : "";
}

function plainText(node) {
  if (node.type === "text" || node.type === "inlineCode") return node.value ?? "";
  if (node.type === "inlineMath") return node.value ?? "";
  return (node.children ?? []).map(plainText).join("");
}

function render(node, page) {
  switch (node.type) {
    case "root":
      return children(node, page);
    case "block": {
      const kind = node.kind ? ` cell-${escapeHtml(node.kind.replace(/^notebook-/, ""))}` : "";
      return `<section class="block${kind}"${idAttr(node)}>${children(node, page)}</section>\n`;
    }
    case "paragraph":
      return `<p>${children(node, page)}</p>\n`;
    case "heading": {
      const depth = Math.min(Math.max(node.depth ?? 2, 1), 6);
      const id = node.html_id ?? node.identifier;
      const inner = children(node, page);
      if (depth === 2 && id) page.headings.push({ id, text: plainText(node) });
      const anchor = id ? ` <a class="anchor" href="#${escapeHtml(id)}" aria-label="link to this section">#</a>` : "";
      return `<h${depth}${idAttr(node)}>${inner}${anchor}</h${depth}>\n`;
    }
    case "text":
      return escapeHtml(node.value);
    case "inlineCode":
      return `<code>${escapeHtml(node.value)}</code>`;
    case "code": {
      const lang = node.lang ?? "";
      const body = /^(python|ipython|py)/.test(lang) ? highlightPython(node.value ?? "") : escapeHtml(node.value);
      const cls = node.executable ? "code cell-input" : "code";
      return `<pre class="${cls}" data-lang="${escapeHtml(lang)}"><code>${body}</code></pre>\n`;
    }
    case "link": {
      const inner = children(node, page) || escapeHtml(node.url);
      const local = node.internal ? page.pageLink(node.url) : null;
      if (local) return `<a href="${escapeHtml(local)}">${inner}</a>`;
      if (/^(https?:|mailto:)/.test(node.url ?? "")) return `<a href="${escapeHtml(node.url)}" rel="noopener">${inner}</a>`;
      if (String(node.url).startsWith("#")) return `<a href="${escapeHtml(node.url)}">${inner}</a>`;
      return `<a href="${escapeHtml(page.asset(node.url))}">${inner}</a>`;
    }
    case "crossReference": {
      const inner = children(node, page) || escapeHtml(node.identifier);
      const target = node.url ? page.pageLink(node.url) : null;
      const href = target ?? `#${node.html_id ?? node.identifier ?? ""}`;
      return `<a class="xref" href="${escapeHtml(href)}">${inner}</a>`;
    }
    case "list": {
      if (node.ordered) {
        const start = node.start && node.start !== 1 ? ` start="${node.start}"` : "";
        return `<ol${start}>${children(node, page)}</ol>\n`;
      }
      return `<ul>${children(node, page)}</ul>\n`;
    }
    case "listItem": {
      // A tight list item shows its paragraph without the paragraph's margins.
      const kids = node.children ?? [];
      const inner =
        !node.spread && kids.length === 1 && kids[0].type === "paragraph" ? children(kids[0], page) : children(node, page);
      return `<li>${inner}</li>\n`;
    }
    case "table": {
      const rows = node.children ?? [];
      const isHeader = rows.length && (rows[0].children ?? []).every((c) => c.header);
      // A header row with nothing in it (`| | |`, a table of name/value pairs) is left out.
      const empty = isHeader && (rows[0].children ?? []).every((c) => plainText(c).trim() === "");
      const head = isHeader && !empty ? [rows[0]] : [];
      const body = rows.slice(isHeader ? 1 : 0);
      const part = (tag, rs) => (rs.length ? `<${tag}>${rs.map((r) => render(r, page)).join("")}</${tag}>` : "");
      return `<div class="table-wrap"><table>${part("thead", head)}${part("tbody", body)}</table></div>\n`;
    }
    case "tableRow":
      return `<tr>${children(node, page)}</tr>`;
    case "tableCell": {
      const tag = node.header ? "th" : "td";
      const align = node.align ? ` style="text-align:${escapeHtml(node.align)}"` : "";
      return `<${tag}${align}>${children(node, page)}</${tag}>`;
    }
    case "math":
      if (node.html) return `<div class="math-display"${idAttr(node)}>${node.html}</div>\n`;
      warn(`a formula could not be typeset: ${node.value}`);
      return `<pre class="math-error">${escapeHtml(node.value)}</pre>\n`;
    case "inlineMath":
      if (node.html) return node.html;
      warn(`a formula could not be typeset: ${node.value}`);
      return `<code class="math-error">${escapeHtml(node.value)}</code>`;
    case "image": {
      const width = node.width ? ` style="width:${escapeHtml(node.width)}"` : "";
      return `<img src="${escapeHtml(page.asset(node.url))}" alt="${escapeHtml(node.alt ?? "")}"${width} loading="eager">`;
    }
    case "container":
      return `<figure class="${escapeHtml(node.kind ?? "figure")}"${idAttr(node)}>${children(node, page)}</figure>\n`;
    case "thematicBreak":
      return "<hr>\n";
    case "break":
      return "<br>";
    case "html":
      return node.value ?? "";
    case "admonition": {
      const kind = escapeHtml(node.kind ?? "note");
      return `<aside class="admonition admonition-${kind}">${children(node, page)}</aside>\n`;
    }
    case "admonitionTitle":
      return `<p class="admonition-title">${children(node, page)}</p>\n`;
    case "abbreviation":
      return `<abbr title="${escapeHtml(node.title ?? "")}">${children(node, page)}</abbr>`;
    case "footnoteReference":
      return `<sup class="footnote-ref"><a href="#fn-${escapeHtml(node.identifier)}">${escapeHtml(node.enumerator ?? node.label ?? "*")}</a></sup>`;
    case "footnoteDefinition":
      return `<div class="footnote" id="fn-${escapeHtml(node.identifier)}"><span class="footnote-label">${escapeHtml(node.enumerator ?? node.label ?? "")}.</span> ${children(node, page)}</div>\n`;
    case "comment":
    case "mystComment":
    case "mystTarget":
      return "";
    case "outputs":
      return node.children?.length ? `<div class="cell-outputs">${children(node, page)}</div>\n` : "";
    case "output":
      return renderOutput(node.jupyter_data ?? {}, page);
    default: {
      if (TAGS[node.type]) {
        const tag = TAGS[node.type];
        return `<${tag} class="${node.type}"${idAttr(node)}>${children(node, page)}</${tag}>`;
      }
      warn(`no rendering for MyST node type "${node.type}"; showing its contents`);
      return node.children ? children(node, page) : escapeHtml(node.value ?? "");
    }
  }
}

// ------------------------------------------------------------------ outputs
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/svg+xml"];
const PREFERRED = [...IMAGE_TYPES, "text/html", "text/plain"];

// MyST stores a notebook output's value inline ({content}) or, when large,
// as a file of the content server ({path}).
async function loadOutputs(mdast) {
  const pending = [];
  const visit = (node) => {
    if (node.type === "output") {
      for (const value of Object.values(node.jupyter_data?.data ?? {})) {
        if (value && typeof value === "object" && value.path && value.content === undefined &&
            !IMAGE_TYPES.includes(value.content_type)) {
          pending.push(fetchFromCdn(value.path, "text").then((text) => (value.content = text)));
        }
      }
    }
    (node.children ?? []).forEach(visit);
  };
  visit(mdast);
  await Promise.all(pending);
}

function renderOutput(output, page) {
  switch (output.output_type) {
    case "stream": {
      const cls = output.name === "stderr" ? "output stream stderr" : "output stream";
      return `<pre class="${cls}">${escapeHtml(terminalText(output.text))}</pre>\n`;
    }
    case "error": {
      const trace = (output.traceback ?? [`${output.ename}: ${output.evalue}`]).join("\n");
      return `<pre class="output error">${escapeHtml(terminalText(trace))}</pre>\n`;
    }
    case "execute_result":
    case "display_data": {
      const data = output.data ?? {};
      const mime = PREFERRED.find((m) => m in data);
      if (!mime) {
        warn(`an output has none of the types the site shows (${Object.keys(data).join(", ")})`);
        return "";
      }
      const value = data[mime];
      if (IMAGE_TYPES.includes(mime)) {
        const src = value.path
          ? page.asset(value.path)
          : `data:${mime};base64,${String(value.content ?? value).replace(/\s/g, "")}`;
        const alt = "figure drawn by the code above";
        return `<div class="output image"><img src="${escapeHtml(src)}" alt="${escapeHtml(alt)}" loading="eager"></div>\n`;
      }
      const text = typeof value === "object" ? value.content ?? "" : String(value);
      if (mime === "text/html") return `<div class="output html">${text}</div>\n`;
      return `<pre class="output text">${escapeHtml(terminalText(text))}</pre>\n`;
    }
    default:
      warn(`unknown notebook output type "${output.output_type}"`);
      return "";
  }
}

// ------------------------------------------------------------------- layout
function launchLinks(notebook) {
  if (!notebook) return "";
  return `<div class="launch">
  <a class="launch-colab" href="${escapeHtml(notebook.colab)}" rel="noopener">Open in Colab</a>
  <a class="launch-binder" href="${escapeHtml(notebook.binder)}" rel="noopener">Launch Binder</a>
  <a class="launch-github" href="${escapeHtml(notebook.github)}" rel="noopener">Notebook on GitHub</a>
</div>\n`;
}

function navigation(site, current) {
  const item = (entry) => {
    const here = entry.slug === current.slug ? ' aria-current="page"' : "";
    return `<li><a href="${escapeHtml(entry.file)}"${here}>${escapeHtml(entry.navTitle)}</a></li>`;
  };
  const groups = [
    ["", site.entries.filter((e) => e.isIndex)],
    ["Notebooks", site.entries.filter((e) => e.notebook)],
    ["Reference", site.entries.filter((e) => !e.isIndex && !e.notebook)],
  ];
  return groups
    .filter(([, entries]) => entries.length)
    .map(([label, entries]) => `${label ? `<p class="nav-label">${label}</p>` : ""}<ul>${entries.map(item).join("")}</ul>`)
    .join("\n");
}

function pager(site, entry) {
  const index = site.entries.indexOf(entry);
  const prev = site.entries[index - 1];
  const next = site.entries[index + 1];
  const link = (e, rel, label) =>
    e ? `<a class="pager-${rel}" rel="${rel}" href="${escapeHtml(e.file)}"><span>${label}</span>${escapeHtml(e.navTitle)}</a>` : "<span></span>";
  return `<nav class="pager" aria-label="previous and next page">${link(prev, "prev", "Previous")}${link(next, "next", "Next")}</nav>`;
}

function onThisPage(page) {
  if (page.headings.length < 2) return "";
  const items = page.headings.map((h) => `<li><a href="#${escapeHtml(h.id)}">${escapeHtml(h.text)}</a></li>`).join("");
  return `<nav class="toc" aria-label="on this page"><p class="nav-label">On this page</p><ul>${items}</ul></nav>`;
}

function layout(site, entry, page, body) {
  const title = entry.isIndex ? site.title : `${entry.title} · ${site.title}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="${STATIC_DIR}/katex/katex.min.css">
<link rel="stylesheet" href="${STATIC_DIR}/site.css">
</head>
<body>
<header class="topbar">
  <a class="site-title" href="${escapeHtml(site.files.get(site.indexSlug))}">${escapeHtml(site.title)}</a>
  <a class="repo" href="${escapeHtml(site.repository)}" rel="noopener">Source on GitHub</a>
</header>
<div class="layout">
<nav class="sidebar" aria-label="course contents">
${navigation(site, entry)}
</nav>
<main>
<article class="page" data-slug="${escapeHtml(entry.slug)}">
<h1 class="page-title">${escapeHtml(entry.title)}</h1>
${launchLinks(entry.notebook)}${body}
</article>
${pager(site, entry)}
</main>
${onThisPage(page)}
</div>
<footer>Built with MyST from the course notebooks and their saved outputs.</footer>
</body>
</html>
`;
}

// --------------------------------------------------------------------- main
async function readMeta() {
  if (!process.env.CHARRNN_SITE_META) return {};
  return JSON.parse(await fs.readFile(process.env.CHARRNN_SITE_META, "utf-8"));
}

async function main() {
  const meta = await readMeta();
  const config = await fetchFromCdn("/config.json");
  const project = config.projects?.[0];
  if (!project) throw new Error("the MyST site config has no project");

  const site = {
    title: meta.title ?? project.title ?? "Course",
    repository: meta.repository ?? project.github ?? "",
    indexSlug: project.index,
    files: new Map(), // slug -> file name of its page
    assets: new Set(),
    entries: [],
  };
  const slugs = [project.index, ...(project.pages ?? []).filter((p) => p.slug).map((p) => p.slug)];
  const documents = await Promise.all(slugs.map((slug) => fetchFromCdn(`/content/${slug}.json`)));
  documents.forEach((doc, i) => {
    const slug = slugs[i];
    const isIndex = i === 0;
    const location = String(doc.location ?? slug).replace(/^\//, "");
    const stem = location.replace(/\.[^./]+$/, "").replace(/[^\w.-]+/g, "-");
    const file = isIndex ? "index.html" : `${stem}.html`;
    const title = doc.frontmatter?.title ?? slug;
    const notebook = meta.notebooks?.[location];
    site.files.set(slug, file);
    site.entries.push({ slug, file, title, navTitle: isIndex ? "Home" : title, isIndex, notebook, doc });
  });

  await fs.mkdir(OUT, { recursive: true });
  for (const entry of site.entries) {
    await loadOutputs(entry.doc.mdast);
    const page = new Page(site, entry);
    const body = render(entry.doc.mdast, page);
    await fs.writeFile(path.join(OUT, entry.file), layout(site, entry, page, body));
  }

  await fs.mkdir(path.join(OUT, ASSET_DIR), { recursive: true });
  await Promise.all(
    [...site.assets].map(async (name) => fs.writeFile(path.join(OUT, ASSET_DIR, name), await fetchFromCdn(`/${name}`, "binary"))),
  );
  const katex = path.join(HERE, "node_modules", "katex", "dist");
  await fs.mkdir(path.join(OUT, STATIC_DIR, "katex"), { recursive: true });
  await fs.copyFile(path.join(katex, "katex.min.css"), path.join(OUT, STATIC_DIR, "katex", "katex.min.css"));
  await fs.cp(path.join(katex, "fonts"), path.join(OUT, STATIC_DIR, "katex", "fonts"), { recursive: true });
  await fs.copyFile(path.join(HERE, "site.css"), path.join(OUT, STATIC_DIR, "site.css"));
  console.log(`site theme: wrote ${site.entries.length} pages and ${site.assets.size} images to ${OUT}`);
}

main().catch((error) => {
  console.error(`site theme: ${error.stack ?? error}`);
  process.exit(1);
});
