import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Router, type Response } from "express";

/** Text made safe to put between HTML tags or in a quoted attribute. */
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON made safe to embed in an inline <script> (no "</script>" can close it early). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:baseline}
header a{color:#9cc3ff}main{padding:16px 20px;display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px 16px}h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}td,th{padding:3px 6px;border-bottom:1px solid #eef0f4;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tr.flagged td{background:#fff1f0;color:#a8071a}
.big{font-size:22px;font-weight:600}.muted{color:#6b7385}button{cursor:pointer}`;

/** A whole page: the shared style, uPlot's stylesheet and script, then `body`. */
export function htmlPage(title: string, body: string, assetBase: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="stylesheet" href="${assetBase}/uplot.css"><style>${STYLE}</style>
<script src="${assetBase}/uplot.js"></script></head><body>${body}</body></html>`;
}

// uPlot's browser build, served from node_modules: no CDN, the pages work offline.
const uplotDist = dirname(createRequire(import.meta.url).resolve("uplot"));

/** uplot.js and uplot.css for the dashboard and the portal, cached for a day. */
export function chartAssets(): Router {
  const router = Router();
  const send = (file: string) => (_req: unknown, res: Response) =>
    res.sendFile(join(uplotDist, file), { maxAge: 86_400_000 });
  router.get("/uplot.js", send("uPlot.iife.min.js"));
  router.get("/uplot.css", send("uPlot.min.css"));
  return router;
}

/**
 * The browser side of every plot: `plot(id, title, xs, series, opts)` draws a uPlot chart into the
 * element with that id and records how many points it drew in `data-points` (what the browser tests
 * read). `series` is [{label, values}]; `opts.bars` draws bars, `opts.time` false makes x an index.
 */
export const PLOT_SCRIPT = `
const COLORS = ["#3b7ddd", "#e8833a", "#2ca58d", "#c2407f", "#8a63d2", "#7a8599"];
function plot(id, title, xs, series, opts = {}) {
  const el = document.getElementById(id);
  el.innerHTML = "";
  el.dataset.points = String(xs.length);
  if (xs.length === 0) { el.textContent = title + ": no data"; return; }
  const bars = opts.bars ? uPlot.paths.bars({ size: [0.6, 60] }) : undefined;
  new uPlot({
    title, width: el.clientWidth || 520, height: 220,
    scales: { x: { time: opts.time !== false } },
    axes: opts.labels ? [{ values: (u, ticks) => ticks.map((t) => opts.labels[t] ?? "") }, {}] : undefined,
    series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length],
      fill: opts.bars ? COLORS[i % COLORS.length] + "99" : undefined, paths: bars, points: { show: true } }))],
  }, [xs, ...series.map((s) => s.values)], el);
}
const money = (micros) => "$" + (micros / 1e6).toFixed(4);
`;
