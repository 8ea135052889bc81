import type { Ctx } from "./state.js";
import { invalid, missingParam, noSuch } from "./api-error.js";
import { optInt, optStr, rejectUnknown } from "./params.js";
import { isObj, type Obj, type Params } from "./util.js";

// Readers of a price's nested parameters (amounts, tiers, recurring), validating as Stripe does.

const DECIMAL = /^\d+(\.\d{1,12})?$/;

function optDecimal(p: Params, key: string, label: string): string | undefined {
  const v = optStr(p, key, label);
  if (v === undefined) return undefined;
  if (!DECIMAL.test(v)) throw invalid(`Invalid decimal: ${v}`, label);
  return v;
}

export function amountPair(p: Params, prefix: string, kind: "unit" | "flat"): [number | null, string | null] {
  const intKey = `${kind}_amount`;
  const decKey = `${kind}_amount_decimal`;
  const n = optInt(p, intKey, `${prefix}${intKey}`);
  const d = optDecimal(p, decKey, `${prefix}${decKey}`);
  if (n !== undefined && d !== undefined) {
    throw invalid(
      `You may only specify one of these parameters: ${intKey}, ${decKey}.`,
      `${prefix}${intKey}`,
    );
  }
  if (n !== undefined) {
    if (n < 0) throw invalid(`Invalid non-negative integer`, `${prefix}${intKey}`);
    return [n, String(n)];
  }
  if (d !== undefined) return [/^\d+(\.0+)?$/.test(d) ? Math.trunc(Number(d)) : null, d];
  return [null, null];
}

export function parseTiers(raw: unknown[]): Obj[] {
  let prev = 0;
  return raw.map((t, i) => {
    const label = `tiers[${i}]`;
    if (!isObj(t)) throw invalid("Invalid tier", label);
    rejectUnknown(
      t,
      ["up_to", "unit_amount", "unit_amount_decimal", "flat_amount", "flat_amount_decimal"],
      label,
    );
    const upRaw = optStr(t, "up_to", `${label}[up_to]`);
    if (upRaw === undefined) throw missingParam(`${label}[up_to]`);
    const last = i === raw.length - 1;
    let upTo: number | null = null;
    if (upRaw === "inf") {
      if (!last) throw invalid("Only the last tier may have up_to set to `inf`.", `${label}[up_to]`);
    } else {
      upTo = optInt(t, "up_to", `${label}[up_to]`) ?? 0;
      if (last) throw invalid("The last tier must have up_to set to `inf`.", `${label}[up_to]`);
      if (upTo <= prev) throw invalid("Tiers must be in ascending order of up_to.", `${label}[up_to]`);
      prev = upTo;
    }
    const [unitAmount, unitDecimal] = amountPair(t, label + "[", "unit");
    const [flatAmount, flatDecimal] = amountPair(t, label + "[", "flat");
    if (unitDecimal === null && flatDecimal === null) {
      throw invalid(
        `Each tier needs unit_amount, unit_amount_decimal, flat_amount or flat_amount_decimal.`,
        label,
      );
    }
    return {
      flat_amount: flatAmount,
      flat_amount_decimal: flatDecimal,
      unit_amount: unitAmount,
      unit_amount_decimal: unitDecimal,
      up_to: upTo,
    };
  });
}

export function parseRecurring(ctx: Ctx, rec: Obj): Obj {
  rejectUnknown(rec, ["interval", "interval_count", "usage_type", "meter", "trial_period_days"], "recurring");
  const interval = optStr(rec, "interval", "recurring[interval]");
  if (!interval) throw missingParam("recurring[interval]");
  if (!["day", "week", "month", "year"].includes(interval)) {
    throw invalid(
      "Invalid recurring[interval]: must be one of day, month, week, or year",
      "recurring[interval]",
    );
  }
  const usageType = optStr(rec, "usage_type", "recurring[usage_type]") ?? "licensed";
  if (usageType !== "licensed" && usageType !== "metered") {
    throw invalid(
      "Invalid recurring[usage_type]: must be one of licensed or metered",
      "recurring[usage_type]",
    );
  }
  const meter = optStr(rec, "meter", "recurring[meter]");
  if (usageType === "metered") {
    if (!meter)
      throw invalid("Metered prices must be backed by a meter: set recurring[meter].", "recurring[meter]");
    if (!ctx.state.get("billing.meter", meter)) throw noSuch("billing meter", meter, "recurring[meter]", 400);
  } else if (meter) {
    throw invalid("recurring[meter] can only be set when recurring[usage_type]=metered.", "recurring[meter]");
  }
  return {
    interval,
    interval_count: optInt(rec, "interval_count", "recurring[interval_count]") ?? 1,
    meter: meter ?? null,
    trial_period_days: optInt(rec, "trial_period_days", "recurring[trial_period_days]") ?? null,
    usage_type: usageType,
  };
}
