import { htmlPage, PLOT_SCRIPT } from "../html.js";

// The browser side: fetch /admin/dashboard/data (the same admin credentials the browser holds),
// draw the plots and tables, redrive a dead letter with the JSON admin API, refresh every 5 s.
const DASHBOARD_SCRIPT = `${PLOT_SCRIPT}
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
const rows = (cells) => cells.map((c) => "<td" + (typeof c === "number" ? ' class="n"' : "") + ">" + esc(c) + "</td>").join("");
let customer = new URLSearchParams(location.search).get("customer") || "";

function usagePlots(u) {
  plot("plot-usage-hourly", "Billable tokens per hour", u.hourly.xs, u.hourly.tokens.map((t) => ({ label: t.model, values: t.values })));
  plot("plot-requests-hourly", "Requests per hour", u.hourly.xs, [{ label: "requests", values: u.hourly.requests }]);
  plot("plot-usage-daily", "Billable tokens per day", u.daily.xs, u.daily.tokens.map((t) => ({ label: t.model, values: t.values })), { bars: u.daily.tokens.length === 1 });
}

function profitabilityPanel(p) {
  const names = p.rows.map((r) => r.name);
  plot("plot-profitability", "Revenue and provider cost this month ($)", p.rows.map((_, i) => i),
    [{ label: "revenue", values: p.rows.map((r) => r.revenueMicros / 1e6) }, { label: "provider cost", values: p.rows.map((r) => r.providerCostMicros / 1e6) }],
    { bars: true, time: false, labels: names });
  $("profitability").innerHTML = "<tr><th>customer</th><th class=n>tokens</th><th class=n>cost</th><th class=n>revenue</th><th class=n>multiple</th></tr>" +
    p.rows.map((r) => '<tr class="' + (r.flagged ? "flagged" : "") + '" data-customer="' + esc(r.customerId) + '">' +
      rows([r.name, r.billableTokens, money(r.providerCostMicros), money(r.revenueMicros), r.multiple === null ? "∞" : r.multiple.toFixed(2) + "×" + (r.flagged ? " ⚠ under " + p.target + "×" : "")]) + "</tr>").join("");
}

function reportingPanel(r) {
  $("report-counts").innerHTML = rows([r.counts.pending, r.counts.sent, r.counts.failed, r.lag_seconds + " s"]);
  $("drift").innerHTML = "<tr><th>customer</th><th>meter</th><th>day</th><th class=n>sent</th><th class=n>Stripe</th><th class=n>drift</th></tr>" +
    r.drift.map((d) => "<tr>" + rows([d.customerId, d.eventName, d.day, d.sentValue, d.stripeValue, d.drift]) + "</tr>").join("");
}

function queuePanel(d) {
  plot("plot-queues", "Queue depth and failed jobs", d.queues.map((_, i) => i),
    [{ label: "depth", values: d.queues.map((q) => q.depth) }, { label: "failed", values: d.queues.map((q) => q.counts.failed || 0) }],
    { bars: true, time: false, labels: d.queues.map((q) => q.queue) });
  $("queues").innerHTML = "<tr><th>queue</th><th class=n>depth</th><th class=n>failed</th><th class=n>failure rate</th></tr>" +
    d.queues.map((q) => "<tr>" + rows([q.queue, q.depth, q.counts.failed || 0, (q.failure_rate * 100).toFixed(1) + "%"]) + "</tr>").join("");
  $("dead-letters").innerHTML = "<tr><th>id</th><th>queue</th><th>job</th><th>reason</th><th>redrives</th><th></th></tr>" +
    d.dead_letters.map((l) => '<tr id="dl-' + l.id + '">' + rows([l.id, l.queue, l.job_id, l.reason, l.redrive_count]) +
      '<td><button class="redrive" data-id="' + l.id + '">Redrive</button></td></tr>').join("");
}

function creditPanel(d) {
  const name = new Map(d.customers.map((c) => [c.id, c.name]));
  plot("plot-credits", "Credit balances ($)", d.credits.map((_, i) => i), [{ label: "balance", values: d.credits.map((c) => c.balanceMicros / 1e6) }],
    { bars: true, time: false, labels: d.credits.map((c) => name.get(c.customerId) || c.customerId) });
  $("alerts").innerHTML = "<tr><th>fired</th><th>customer</th><th>kind</th><th class=n>threshold</th><th>recovered</th></tr>" +
    d.alerts.map((a) => "<tr>" + rows([a.firedAt, name.get(a.customerId) || a.customerId, a.kind, a.threshold, a.recoveredAt || ""]) + "</tr>").join("");
}

async function refresh() {
  const res = await fetch("/admin/dashboard/data" + (customer ? "?customer=" + encodeURIComponent(customer) : ""));
  if (!res.ok) { $("status").textContent = "data: HTTP " + res.status; return; }
  const d = await res.json();
  const select = $("customer");
  select.innerHTML = '<option value="">all customers</option>' + d.customers.map((c) => '<option value="' + esc(c.id) + '"' + (c.id === customer ? " selected" : "") + ">" + esc(c.name) + "</option>").join("");
  usagePlots(d.usage); profitabilityPanel(d.profitability); reportingPanel(d.reporting); queuePanel(d); creditPanel(d);
  $("status").textContent = "updated " + new Date(d.generated_at).toLocaleTimeString();
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
}

document.addEventListener("click", async (e) => {
  const button = e.target.closest("button.redrive");
  if (!button) return;
  button.disabled = true;
  const res = await fetch("/admin/dead-letters/" + button.dataset.id + "/redrive", { method: "POST" });
  const body = await res.json();
  button.textContent = res.ok ? body.outcome : body.error.message;
  button.closest("tr").dataset.redrive = res.ok ? body.outcome : "error";
});
$("customer").addEventListener("change", (e) => { customer = e.target.value; history.replaceState(null, "", customer ? "?customer=" + encodeURIComponent(customer) : location.pathname); refresh(); });
refresh();
setInterval(refresh, 5000);
`;

/** The operator dashboard's page: the panels, filled in by the script from /admin/dashboard/data. */
export function dashboardPage(): string {
  const body = `<header><strong>meterline</strong><span>operator dashboard</span><a href="/admin/queues">Bull Board</a>
<label class="muted">usage of <select id="customer"></select></label><span id="status" class="muted"></span></header>
<main>
<section><h2>Usage, last 48 hours</h2><div id="plot-usage-hourly"></div><div id="plot-requests-hourly"></div></section>
<section><h2>Usage, last 30 days</h2><div id="plot-usage-daily"></div></section>
<section><h2>Profitability this month</h2><div id="plot-profitability"></div><table id="profitability"></table></section>
<section><h2>Stripe reporting</h2><table><tr><th class=n>pending</th><th class=n>sent</th><th class=n>failed</th><th class=n>lag</th></tr><tr id="report-counts"></tr></table>
<h2>Reconciliation drift</h2><table id="drift"></table></section>
<section><h2>Queues</h2><div id="plot-queues"></div><table id="queues"></table></section>
<section><h2>Dead letters</h2><table id="dead-letters"></table></section>
<section><h2>Credits and alerts</h2><div id="plot-credits"></div><table id="alerts"></table></section>
</main><script>${DASHBOARD_SCRIPT}</script>`;
  return htmlPage("meterline dashboard", body, "/admin/assets");
}
