import { formatMicros } from "../../billing/pricing/money.js";
import { escapeHtml, htmlPage, PLOT_SCRIPT, scriptJson } from "../html.js";
import type { PortalData } from "./data.js";

const usd = (micros: number) => formatMicros(micros, 2);
const PREVIEW_SOURCE = {
  stripe: "Stripe's preview of your subscription's next invoice.",
  meterline: "Rated by meterline from this period's usage.",
};
const int = (n: number) => n.toLocaleString("en-US");

/** The customer portal page: the numbers server-rendered, usage by day plotted from the same data. */
export function portalPage(d: PortalData, assetBase: string): string {
  const allowance =
    d.plan.included_tokens > 0
      ? `<div class="big" id="allowance-remaining">${int(d.allowance.remaining_tokens)}</div><div class="muted">of ${int(d.allowance.included_tokens)} included tokens left</div>`
      : `<div class="big" id="credit-balance">${usd(d.credits.balance_micros)}</div><div class="muted">credit balance</div>`;
  const lines = d.invoice_preview.lines
    .map((l) => `<tr><td>${escapeHtml(l.description)}</td><td class="n">${usd(l.amount_micros)}</td></tr>`)
    .join("");
  const keys = d.api_keys
    .map(
      (k) =>
        `<tr><td><code>${escapeHtml(k.prefix)}…</code></td><td>${escapeHtml(k.last_used_at ?? "never")}</td></tr>`,
    )
    .join("");
  const body = `<header><strong>${escapeHtml(d.customer.name)}</strong><span>usage ${d.period.start.slice(0, 10)} – ${d.period.end.slice(0, 10)}</span><span class="muted">plan ${escapeHtml(d.plan.name)}</span></header>
<main>
<section><h2>This period</h2><div class="big" id="period-tokens">${int(d.tokens.billable_tokens)}</div><div class="muted">billable tokens in <span id="period-requests">${int(d.tokens.requests)}</span> requests</div></section>
<section><h2>Allowance and credits</h2>${allowance}</section>
<section><h2>Charges so far</h2><div class="big" id="charges-total">${usd(d.charges.total_micros)}</div><div class="muted">base fee ${usd(d.charges.base_fee_micros)}, usage ${usd(d.charges.usage_micros)}, credits paid ${usd(d.charges.credits_paid_micros)}</div></section>
<section><h2>Usage by day</h2><div id="plot-days"></div></section>
<section><h2>Invoice preview</h2><table id="invoice-preview">${lines}<tr><th>Total</th><th class="n">${usd(d.invoice_preview.total_micros)}</th></tr></table><div class="muted" id="invoice-source" data-source="${d.invoice_preview.source}">${PREVIEW_SOURCE[d.invoice_preview.source]}</div></section>
<section><h2>API keys</h2><table id="api-keys"><tr><th>key</th><th>last used</th></tr>${keys}</table></section>
</main>
<script>${PLOT_SCRIPT}
const days = ${scriptJson(d.by_day)};
plot("plot-days", "Billable tokens per day", days.map((x) => Date.parse(x.day) / 1000),
  [{ label: "tokens", values: days.map((x) => x.billable_tokens) }], { bars: true });
</script>`;
  return htmlPage(`${d.customer.name} — usage`, body, assetBase);
}

/** The page an expired or tampered link gets (403). */
export function refusedPage(reason: string, assetBase: string): string {
  return htmlPage(
    "Link refused",
    `<main><section id="refused"><h2>This usage link cannot be opened</h2><p>${escapeHtml(reason)} Ask for a new link.</p></section></main>`,
    assetBase,
  );
}
