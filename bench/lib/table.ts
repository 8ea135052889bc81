/** One line of the bench table. `value` is null when the row could not be measured. */
export interface Row {
  id: string;
  label: string;
  value: number | null;
  unit: string;
  /** Secondary figures, e.g. latencies next to a throughput. */
  detail?: string;
  baseline?: { id: string; value: number | null; unit: string };
  ratio?: number | null;
  target?: string;
  /** true = pass, false = miss, undefined = no target. */
  pass?: boolean;
  /** Why the row has no value (the error its section failed with). */
  note?: string;
}

const fmt = (n: number | null | undefined, unit = ""): string => {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const digits = Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  const text = n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit ? `${text} ${unit}` : text;
};

/** Compares a higher-is-better value with a share of its baseline. */
export function atLeastShare(
  row: Omit<Row, "baseline" | "ratio" | "target" | "pass">,
  baseline: Row | undefined,
  share: number,
): Row {
  const ratio = baseline?.value && row.value !== null ? row.value / baseline.value : null;
  return {
    ...row,
    baseline: baseline ? { id: baseline.id, value: baseline.value, unit: baseline.unit } : undefined,
    ratio,
    target: `≥ ${share}× ${baseline?.id ?? "baseline"}`,
    pass: ratio === null ? undefined : ratio >= share,
  };
}

export function atMost(row: Omit<Row, "target" | "pass">, limit: number, unit = row.unit): Row {
  return {
    ...row,
    target: `≤ ${fmt(limit, unit)}`,
    pass: row.value === null ? undefined : row.value <= limit,
  };
}

export function atLeast(row: Omit<Row, "target" | "pass">, limit: number, unit = row.unit): Row {
  return {
    ...row,
    target: `≥ ${fmt(limit, unit)}`,
    pass: row.value === null ? undefined : row.value >= limit,
  };
}

/** A row whose section failed to run: `note` says why. */
export function unavailable(id: string, label: string, note: string, target?: string): Row {
  return { id, label, value: null, unit: "", note, target };
}

export function renderTable(rows: Row[]): string {
  const lines = [
    "| row | value | baseline | ratio | target | result |",
    "|---|---|---|---|---|---|",
    ...rows.map((r) => {
      const value =
        r.value === null ? (r.note ?? "—") : fmt(r.value, r.unit) + (r.detail ? ` (${r.detail})` : "");
      const baseline = r.baseline ? `${r.baseline.id}: ${fmt(r.baseline.value, r.baseline.unit)}` : "";
      const ratio = r.ratio === undefined || r.ratio === null ? "" : `${fmt(r.ratio)}×`;
      const result =
        r.pass === undefined ? (r.value === null && r.note ? "n/a" : "") : r.pass ? "pass" : "**miss**";
      return `| ${r.id}. ${r.label} | ${value} | ${baseline} | ${ratio} | ${r.target ?? ""} | ${result} |`;
    }),
  ];
  return lines.join("\n");
}
