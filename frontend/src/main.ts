// The client portal: a static app over /api/v1/portal/ (typed by the generated schema).
import { ApiError, get, url } from "./api/client";
import type { components } from "./api/schema";
import "./portal.css";

type Ret = components["schemas"]["PortalReturn"] | null;
type FeeRet = components["schemas"]["PortalFeeReturn"] | null;
type Child = Node | string | null | undefined | false;

const main = document.getElementById("main") as HTMLElement;

function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c) el.append(c);
  return el;
}

function money(value: string | null | undefined, currency: string): string {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(Number(value));
}

function pct(r: Ret): string {
  if (!r) return "—";
  return `${(Number(r.value) * 100).toFixed(2)} %`;
}

function net(f: FeeRet): string {
  return f ? pct(f.net) : "—";
}

function gross(f: FeeRet): string {
  return f ? pct(f.gross) : "—";
}

function link(href: string, text: string): HTMLElement {
  const a = h("a", { href }, text);
  a.addEventListener("click", (e) => {
    if (href.startsWith("/portal/")) {
      e.preventDefault();
      history.pushState(null, "", href);
      void route();
    }
  });
  return a;
}

function table(caption: string, head: string[], rows: Child[][], numeric: Set<number> = new Set()): HTMLElement {
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      { class: "table" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, ...head.map((t, i) => h("th", { scope: "col", class: numeric.has(i) ? "num" : "" }, t)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c, i) => h("td", { class: numeric.has(i) ? "num" : "" }, c))))),
    ),
  );
}

const SVGNS = "http://www.w3.org/2000/svg";
const PAGE_SIZE = 25;

function chart(points: { date: string; value: string }[], currency: string): HTMLElement {
  const wrap = h("figure", { class: "portal-chart" });
  // Shown for sighted users; screen readers hear the slider's aria-valuetext instead (no double reading).
  const readout = h("p", { class: "muted", "aria-hidden": "true" }, "");
  if (points.length < 2) {
    wrap.append(h("p", { class: "muted" }, "Not enough history for a chart yet."));
    return wrap;
  }
  const w = 640, ht = 200;
  const values = points.map((p) => Number(p.value));
  const lo = Math.min(...values), hi = Math.max(...values);
  const x = (i: number) => (i / (points.length - 1)) * w;
  const y = (v: number) => ht - ((v - lo) / (hi - lo || 1)) * (ht - 10) - 5;
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${ht}`);
  // Keyboard access: the chart is a slider over its days. Arrow keys move the point a day,
  // Page Up/Down a tenth of the range, Home/End to the first/last day; each value is announced.
  svg.setAttribute("role", "slider");
  svg.setAttribute("tabindex", "0");
  svg.setAttribute("class", "portal-chart-plot");
  svg.setAttribute("aria-label", `Value from ${points[0].date} to ${points[points.length - 1].date}; use the arrow keys to read each day`);
  svg.setAttribute("aria-valuemin", "0");
  svg.setAttribute("aria-valuemax", String(points.length - 1));
  svg.setAttribute("aria-orientation", "horizontal");
  const line = document.createElementNS(SVGNS, "polyline");
  line.setAttribute("points", values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
  line.setAttribute("class", "portal-line");
  svg.append(line);
  const dot = document.createElementNS(SVGNS, "circle");
  dot.setAttribute("r", "4");
  dot.setAttribute("class", "portal-dot");
  svg.append(dot);
  let current = points.length - 1;
  const show = (i: number) => {
    current = Math.max(0, Math.min(points.length - 1, i));
    const text = `${points[current].date}: ${money(points[current].value, currency)}`;
    dot.setAttribute("cx", x(current).toFixed(1));
    dot.setAttribute("cy", y(values[current]).toFixed(1));
    readout.textContent = text;
    svg.setAttribute("aria-valuenow", String(current));
    svg.setAttribute("aria-valuetext", text);
  };
  svg.addEventListener("mousemove", (e) => {
    const box = svg.getBoundingClientRect();
    show(Math.round(((e.clientX - box.left) / box.width) * (points.length - 1)));
  });
  const page = Math.max(1, Math.round(points.length / 10));
  const steps: Record<string, () => number> = {
    ArrowLeft: () => current - 1,
    ArrowDown: () => current - 1,
    ArrowRight: () => current + 1,
    ArrowUp: () => current + 1,
    PageDown: () => current - page,
    PageUp: () => current + page,
    Home: () => 0,
    End: () => points.length - 1,
  };
  svg.addEventListener("keydown", (e) => {
    const step = steps[e.key];
    if (!step) return;
    e.preventDefault();
    show(step());
  });
  show(points.length - 1);
  wrap.append(svg, readout);
  return wrap;
}

async function valueChart(portfolioId: number, currency: string): Promise<HTMLElement> {
  const card = h("section", { class: "card" }, h("h2", {}, "Value"));
  const tabs = h("div", { class: "portal-tabs", role: "group", "aria-label": "Range" });
  const body = h("div", {});
  const load = async (range: string) => {
    for (const b of Array.from(tabs.children)) b.setAttribute("aria-pressed", String(b.textContent === range));
    const series = await get("/api/v1/portal/portfolios/{id}/value-series/", { id: portfolioId }, { range });
    body.replaceChildren(chart(series.points, currency), h("p", {}, `Time-weighted return (${range}): `, h("strong", {}, pct(series.twr))));
  };
  for (const r of ["1M", "3M", "YTD", "1Y", "3Y", "ALL"]) {
    const b = h("button", { type: "button", class: "small secondary", "aria-pressed": "false" }, r);
    b.addEventListener("click", () => void load(r));
    tabs.append(b);
  }
  card.append(tabs, body);
  await load("ALL");
  return card;
}

async function overview(): Promise<void> {
  const [data, posts] = await Promise.all([get("/api/v1/portal/overview/"), get("/api/v1/portal/posts/")]);
  const total = h(
    "section",
    { class: "card" },
    h("h2", {}, data.household ? `Total value · ${data.household}` : "Total value"),
    h("p", { class: "portal-total", "data-testid": "total-value" }, money(data.total_value, data.currency)),
    h("p", {}, "Today: ", money(data.change_today, data.currency), ` · as of ${data.as_of}`),
  );
  const rows = data.portfolios.map((p) => [
    link(`/portal/portfolios/${p.id}`, p.name),
    money(p.value, p.base_currency),
    pct(p.ytd),
    h("span", { "data-testid": `ytd-gross-${p.id}` }, gross(p.ytd_fee_return)),
    h("span", { "data-testid": `si-${p.id}` }, pct(p.since_inception)),
    h("span", { "data-testid": `si-gross-${p.id}` }, gross(p.since_inception_fee_return)),
  ]);
  const list = h("section", { class: "card" }, h("h2", {}, "Portfolios"),
    table("Your portfolios", ["Portfolio", "Value", "YTD (net of fees)", "YTD gross of fees",
      "Since inception (net)", "Since inception gross"], rows, new Set([1, 2, 3, 4, 5])),
    h("p", { class: "muted" }, "Time-weighted returns. Net of fees: after the advisory fees taken from the account; gross: before them."));
  const allocation = h("section", { class: "card" }, h("h2", {}, "Allocation"),
    table("By asset class", ["Asset class", "Weight"],
      data.allocation.map((a) => [a.bucket, `${(Number(a.weight) * 100).toFixed(1)} %`]), new Set([1])));
  const news = h("section", { class: "card" }, h("h2", {}, "From your advisor"));
  for (const post of posts.results) {
    const body = h("div", {});
    body.innerHTML = post.body_html; // sanitised on the server (nh3 allow-list)
    news.append(h("article", {}, h("h3", {}, post.title), body));
  }
  if (!posts.results.length) news.append(h("p", { class: "muted" }, "No news yet."));
  main.replaceChildren(h("h1", {}, "Overview"), total, list);
  if (data.portfolios.length) main.append(await valueChart(data.portfolios[0].id, data.portfolios[0].base_currency));
  main.append(allocation, news);
}

async function portfolio(id: number): Promise<void> {
  const p = await get("/api/v1/portal/portfolios/{id}/", { id });
  const c = p.base_currency;
  const returns = table(
    "Returns by period",
    ["Period", "TWR (net of fees)", "Gross of fees", "Advisory fees", "Money-weighted", "Benchmark"],
    p.returns.map((r) => [
      r.period,
      h("span", { "data-testid": `twr-${r.period}` }, pct(r.twr)),
      h("span", { "data-testid": `gross-${r.period}` }, gross(r.fee_return)),
      r.fee_return ? money(r.fee_return.fees, c) : "—",
      pct(r.mwr),
      pct(r.benchmark),
    ]),
    new Set([1, 2, 3, 4, 5]),
  );
  const holdings = table(
    "Holdings",
    ["Instrument", "Quantity", "Value", "Gain", "Weight"],
    p.holdings.map((x) => [x.symbol ?? "", x.quantity, money(x.market_value_base, c), money(x.unrealised_gain_base, c),
      x.weight ? `${(Number(x.weight) * 100).toFixed(1)} %` : "—"]),
    new Set([1, 2, 3, 4]),
  );
  const allocation = table("Allocation by asset class", ["Asset class", "Weight"],
    p.allocation.filter((a) => a.dimension === "asset_class").map((a) => [a.bucket, `${(Number(a.weight) * 100).toFixed(1)} %`]), new Set([1]));
  const gains = table("Realised gains by year", ["Year", "Short", "Long", "Total"],
    p.realised_by_year.map((g) => [String(g.year), money(g.short, c), money(g.long, c), money(g.total, c)]), new Set([1, 2, 3]));
  main.replaceChildren(
    h("h1", {}, p.name),
    p.message ? h("p", { class: "notice" }, p.message) : "",
    h("section", { class: "card" }, h("h2", {}, "Value"),
      h("p", { class: "portal-total", "data-testid": "portfolio-value" }, money(p.total_value, c)),
      h("p", {}, `Income ${money(p.income, c)} · Fees ${money(p.fees, c)}`),
      link(`/portal/portfolios/${id}/transactions`, "Transactions")),
    await valueChart(id, c),
    h("section", { class: "card" }, h("h2", {}, "Returns"), returns),
    h("section", { class: "card" }, h("h2", {}, "Holdings"), holdings),
    h("section", { class: "card" }, h("h2", {}, "Allocation"), allocation),
    h("section", { class: "card" }, h("h2", {}, "Realised gains"), gains),
  );
}

async function transactions(id: number): Promise<void> {
  const form = h("form", { class: "portal-filters" });
  const kind = h("select", { id: "f-kind", name: "kind" }, h("option", { value: "" }, "All kinds"),
    ...["buy", "sell", "dividend", "interest", "fee", "tax", "deposit", "withdrawal"].map((k) => h("option", { value: k }, k)));
  const start = h("input", { id: "f-start", name: "start", type: "date" });
  const end = h("input", { id: "f-end", name: "end", type: "date" });
  const csv = h("a", { class: "button small secondary" }, "Download CSV");
  form.append(h("label", { for: "f-kind" }, "Kind"), kind, h("label", { for: "f-start" }, "From"), start,
    h("label", { for: "f-end" }, "To"), end, h("button", { type: "submit", class: "small" }, "Filter"), csv);
  const body = h("div", {});
  const pager = h("nav", { class: "portal-pager", "aria-label": "Pages of transactions" });
  const status = h("p", { class: "muted", role: "status" }, "");
  let page = 1;
  const load = async () => {
    const q: Record<string, string> = {};
    for (const el of [kind, start, end] as HTMLInputElement[]) if (el.value) q[el.name] = el.value;
    csv.setAttribute("href", url("/api/v1/portal/portfolios/{id}/transactions/export/", { id }, q));
    const list = await get("/api/v1/portal/portfolios/{id}/transactions/", { id }, { ...q, page: String(page), page_size: String(PAGE_SIZE) });
    body.replaceChildren(table("Transactions", ["Date", "Kind", "Instrument", "Quantity", "Amount"],
      list.results.map((t) => [t.trade_date, t.kind, t.instrument_symbol ?? "", t.quantity ?? "", t.amount ?? ""]), new Set([3, 4])));
    const pages = Math.max(1, Math.ceil(list.count / PAGE_SIZE));
    status.textContent = `Page ${page} of ${pages} · ${list.count} transaction${list.count === 1 ? "" : "s"}`;
    const previous = h("button", { type: "button", class: "small secondary" }, "Previous");
    const next = h("button", { type: "button", class: "small secondary" }, "Next");
    if (!list.previous) previous.setAttribute("disabled", "");
    if (!list.next) next.setAttribute("disabled", "");
    previous.addEventListener("click", () => { page -= 1; void load(); });
    next.addEventListener("click", () => { page += 1; void load(); });
    pager.replaceChildren(previous, status, next);
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); page = 1; void load(); });
  main.replaceChildren(h("h1", {}, "Transactions"), link(`/portal/portfolios/${id}`, "Back to the portfolio"), form, body, pager);
  await load();
}

async function documents(): Promise<void> {
  const list = await get("/api/v1/portal/documents/");
  const rows = list.results.map((d) => {
    const b = h("button", { type: "button", class: "small" }, "Download");
    b.setAttribute("aria-label", `Download ${d.title}`);
    b.addEventListener("click", async () => {
      const detail = d.source === "fee_statement"
        ? await get("/api/v1/portal/fee-statements/{id}/", { id: d.id })
        : await get("/api/v1/portal/documents/{id}/", { id: d.id });
      window.location.assign(detail.download_url);
    });
    return [d.title, d.kind, d.period_end ?? "", d.created_at.slice(0, 10), b];
  });
  main.replaceChildren(h("h1", {}, "Documents"),
    rows.length ? table("Your documents", ["Title", "Kind", "As of", "Added", "File"], rows) : h("p", {}, "No documents yet."));
}

async function advisor(): Promise<void> {
  const a = await get("/api/v1/portal/advisor/");
  main.replaceChildren(h("h1", {}, "Your advisor"), h("section", { class: "card" }, h("h2", {}, a.name), h("p", {}, a.firm_name),
    a.email ? h("p", {}, h("a", { href: `mailto:${a.email}` }, a.email)) : null));
}

async function route(): Promise<void> {
  const path = window.location.pathname.replace(/\/+$/, "");
  let m: RegExpMatchArray | null;
  try {
    if ((m = path.match(/^\/portal\/portfolios\/(\d+)\/transactions$/))) await transactions(Number(m[1]));
    else if ((m = path.match(/^\/portal\/portfolios\/(\d+)$/))) await portfolio(Number(m[1]));
    else if (path === "/portal/documents") await documents();
    else if (path === "/portal/advisor") await advisor();
    else await overview();
  } catch (err) {
    const message = err instanceof ApiError && err.status === 404 ? "Not found." : err instanceof Error ? err.message : "Error";
    main.replaceChildren(h("h1", {}, "Not available"), h("p", { role: "alert" }, message));
  }
  main.focus();
}

// Light/dark: "Auto" follows the system (prefers-color-scheme); a choice is remembered in the
// staff UI's own cookie, which the server reads to paint the first frame in it (portal.views.app).
function themeSwitch(): void {
  const group = document.getElementById("theme-switch");
  if (!group) return;
  const buttons = Array.from(group.querySelectorAll<HTMLButtonElement>("button[data-theme-choice]"));
  const mark = (value: string) => {
    for (const b of buttons) b.setAttribute("aria-pressed", String((b.dataset.themeChoice ?? "") === value));
  };
  mark(document.documentElement.getAttribute("data-theme") ?? "");
  for (const b of buttons) {
    b.addEventListener("click", () => {
      const value = b.dataset.themeChoice ?? "";
      if (value) {
        document.documentElement.setAttribute("data-theme", value);
        document.cookie = `codex_theme=${value}; path=/; max-age=31536000; samesite=lax`;
      } else {
        document.documentElement.removeAttribute("data-theme");
        document.cookie = "codex_theme=; path=/; max-age=0; samesite=lax";
      }
      mark(value);
    });
  }
}

async function start(): Promise<void> {
  themeSwitch();
  try {
    const me = await get("/api/v1/portal/me/");
    (document.getElementById("firm-name") as HTMLElement).textContent = me.firm_name;
    (document.getElementById("firm-mark") as HTMLElement).textContent = me.firm_name.slice(0, 1);
    document.title = `Client portal · ${me.firm_name}`;
    (document.getElementById("portal-nav") as HTMLElement).hidden = false;
    for (const a of Array.from(document.querySelectorAll<HTMLAnchorElement>("#portal-nav a[href^='/portal/']"))) {
      a.addEventListener("click", (e) => { e.preventDefault(); history.pushState(null, "", a.getAttribute("href")); void route(); });
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      main.replaceChildren(h("h1", {}, "Client portal"), h("p", {}, "This portal is for the firm's clients. "), h("a", { href: "/" }, "Back"));
      return;
    }
    main.replaceChildren(h("h1", {}, "Not available"), h("p", { role: "alert" }, err instanceof Error ? err.message : "Error"));
    return;
  }
  window.addEventListener("popstate", () => void route());
  await route();
}

void start();
