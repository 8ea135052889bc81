import type { Ctx, Route } from "./state.js";
import {
  expands,
  invalid,
  isObj,
  mergeMetadata,
  missingParam,
  newId,
  noSuch,
  optArr,
  optBool,
  optInt,
  optObj,
  optStr,
  paginate,
  rejectUnknown,
  reqStr,
  type Obj,
  type Params,
} from "./util.js";

const PRICE_PARAMS = [
  "active",
  "billing_scheme",
  "currency",
  "currency_options",
  "custom_unit_amount",
  "lookup_key",
  "metadata",
  "nickname",
  "product",
  "product_data",
  "recurring",
  "tax_behavior",
  "tiers",
  "tiers_mode",
  "transfer_lookup_key",
  "transform_quantity",
  "unit_amount",
  "unit_amount_decimal",
];
const DECIMAL = /^\d+(\.\d{1,12})?$/;

function optDecimal(p: Params, key: string, label: string): string | undefined {
  const v = optStr(p, key, label);
  if (v === undefined) return undefined;
  if (!DECIMAL.test(v)) throw invalid(`Invalid decimal: ${v}`, label);
  return v;
}

function amountPair(p: Params, prefix: string, kind: "unit" | "flat"): [number | null, string | null] {
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

function parseTiers(raw: unknown[]): Obj[] {
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

function parseRecurring(ctx: Ctx, rec: Obj): Obj {
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

function takeLookupKey(ctx: Ctx, key: string, transfer: boolean, selfId?: string): void {
  for (const other of ctx.state.list("price", (o) => o.lookup_key === key && o.id !== selfId)) {
    if (!transfer) {
      throw invalid(
        `A price (\`${String(other.id)}\`) already uses that lookup key. Set transfer_lookup_key=true to move it.`,
        "lookup_key",
      );
    }
    ctx.state.put({ ...other, lookup_key: null });
  }
}

function resolveProduct(ctx: Ctx, p: Params): string {
  const product = optStr(p, "product");
  const productData = optObj(p, "product_data");
  if (product && productData) throw invalid("You may only specify one of product, product_data.", "product");
  if (product) {
    if (!ctx.state.get("product", product)) throw noSuch("product", product, "product", 400);
    return product;
  }
  if (!productData) throw missingParam("product");
  const now = ctx.state.now();
  const created = ctx.state.put({
    id: newId("prod", 14),
    object: "product",
    active: true,
    created: now,
    default_price: null,
    description: null,
    livemode: false,
    metadata: mergeMetadata({}, productData),
    name: reqStr(productData, "name", "product_data[name]"),
    type: "service",
    updated: now,
  });
  return String(created.id);
}

function createPrice(ctx: Ctx): Obj {
  const p = ctx.params;
  rejectUnknown(p, PRICE_PARAMS);
  const currency = reqStr(p, "currency").toLowerCase();
  const scheme = optStr(p, "billing_scheme") ?? "per_unit";
  if (scheme !== "per_unit" && scheme !== "tiered") {
    throw invalid("Invalid billing_scheme: must be one of per_unit or tiered", "billing_scheme");
  }
  const rawTiers = optArr(p, "tiers");
  const tiersMode = optStr(p, "tiers_mode");
  const transform = optObj(p, "transform_quantity");
  let tiers: Obj[] | null = null;
  let unit: [number | null, string | null] = [null, null];
  if (scheme === "tiered") {
    if (transform) {
      throw invalid(
        "You cannot use `transform_quantity` with `billing_scheme=tiered`.",
        "transform_quantity",
      );
    }
    if (!tiersMode) throw missingParam("tiers_mode");
    if (tiersMode !== "graduated" && tiersMode !== "volume") {
      throw invalid("Invalid tiers_mode: must be one of graduated or volume", "tiers_mode");
    }
    if (!rawTiers || rawTiers.length === 0) throw missingParam("tiers");
    if (p.unit_amount !== undefined || p.unit_amount_decimal !== undefined) {
      throw invalid(
        "unit_amount cannot be used with billing_scheme=tiered; set amounts on the tiers.",
        "unit_amount",
      );
    }
    tiers = parseTiers(rawTiers);
  } else {
    if (rawTiers) throw invalid("tiers can only be used with billing_scheme=tiered.", "tiers");
    if (tiersMode) throw invalid("tiers_mode can only be used with billing_scheme=tiered.", "tiers_mode");
    unit = amountPair(p, "", "unit");
    if (unit[1] === null && p.custom_unit_amount === undefined) throw missingParam("unit_amount");
  }
  let transformQuantity: Obj | null = null;
  if (transform) {
    const divideBy = optInt(transform, "divide_by", "transform_quantity[divide_by]");
    const round = optStr(transform, "round", "transform_quantity[round]");
    if (!divideBy || divideBy < 1) throw missingParam("transform_quantity[divide_by]");
    if (round !== "up" && round !== "down") throw missingParam("transform_quantity[round]");
    transformQuantity = { divide_by: divideBy, round };
  }
  const rec = optObj(p, "recurring");
  const recurring = rec ? parseRecurring(ctx, rec) : null;
  const product = resolveProduct(ctx, p);
  const lookupKey = optStr(p, "lookup_key");
  if (lookupKey) takeLookupKey(ctx, lookupKey, optBool(p, "transfer_lookup_key") ?? false);
  return ctx.state.put({
    id: newId("price"),
    object: "price",
    active: optBool(p, "active") ?? true,
    billing_scheme: scheme,
    created: ctx.state.now(),
    currency,
    custom_unit_amount: null,
    livemode: false,
    lookup_key: lookupKey || null,
    metadata: mergeMetadata({}, p),
    nickname: optStr(p, "nickname") ?? null,
    product,
    recurring,
    tax_behavior: optStr(p, "tax_behavior") ?? "unspecified",
    tiers,
    tiers_mode: tiersMode ?? null,
    transform_quantity: transformQuantity,
    type: recurring ? "recurring" : "one_time",
    unit_amount: unit[0],
    unit_amount_decimal: unit[1],
  });
}

/** Like Stripe, `tiers` is only in the response when expanded (`expand[]=tiers` / `data.tiers`). */
export function renderPrice(price: Obj, withTiers: boolean): Obj {
  if (withTiers && price.billing_scheme === "tiered") return price;
  const { tiers: _tiers, ...rest } = price;
  return rest;
}

export function getPrice(ctx: Ctx, id: string, param = "id", status = 404): Obj {
  const price = ctx.state.get("price", id);
  if (!price) throw noSuch("price", id, param, status);
  return price;
}

function updatePrice(ctx: Ctx): Obj {
  const p = ctx.params;
  rejectUnknown(p, ["active", "lookup_key", "metadata", "nickname", "tax_behavior", "transfer_lookup_key"]);
  const price = getPrice(ctx, ctx.pathParams.id ?? "");
  const lookupKey = optStr(p, "lookup_key");
  if (lookupKey) takeLookupKey(ctx, lookupKey, optBool(p, "transfer_lookup_key") ?? false, String(price.id));
  const updated = ctx.state.put({
    ...price,
    active: optBool(p, "active") ?? price.active,
    lookup_key: lookupKey === undefined ? price.lookup_key : lookupKey || null,
    metadata: mergeMetadata(isObj(price.metadata) ? price.metadata : {}, p),
    nickname: optStr(p, "nickname") ?? price.nickname,
  });
  return renderPrice(updated, expands(p).includes("tiers"));
}

function listPrices(ctx: Ctx): Obj {
  const p = ctx.params;
  const lookupKeys = optArr(p, "lookup_keys")?.map(String);
  const active = optBool(p, "active");
  const product = optStr(p, "product");
  const type = optStr(p, "type");
  const currency = optStr(p, "currency");
  const list = ctx.state.list(
    "price",
    (o) =>
      (lookupKeys === undefined || (typeof o.lookup_key === "string" && lookupKeys.includes(o.lookup_key))) &&
      (active === undefined || o.active === active) &&
      (product === undefined || o.product === product) &&
      (type === undefined || o.type === type) &&
      (currency === undefined || o.currency === currency.toLowerCase()),
  );
  const withTiers = expands(p).includes("data.tiers");
  return paginate(
    list.map((o) => renderPrice(o, withTiers)),
    p,
    "/v1/prices",
  );
}

export const priceRoutes: Route[] = [
  {
    method: "POST",
    template: "/v1/prices",
    handler: (ctx) => renderPrice(createPrice(ctx), expands(ctx.params).includes("tiers")),
  },
  { method: "GET", template: "/v1/prices", handler: listPrices },
  {
    method: "GET",
    template: "/v1/prices/:id",
    handler: (ctx) =>
      renderPrice(getPrice(ctx, ctx.pathParams.id ?? ""), expands(ctx.params).includes("tiers")),
  },
  { method: "POST", template: "/v1/prices/:id", handler: updatePrice },
];
