import { productObject } from "./catalog.js";
import { amountPair, parseRecurring, parseTiers } from "./price-params.js";
import type { Ctx, Route } from "./state.js";
import { invalid, missingParam, noSuch } from "./api-error.js";
import { paginate } from "./paginate.js";
import {
  expands,
  mergeMetadata,
  optArr,
  optBool,
  optInt,
  optObj,
  optStr,
  rejectUnknown,
  reqStr,
} from "./params.js";
import { newId, type Obj, type Params } from "./util.js";

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
function takeLookupKey(ctx: Ctx, key: string, transfer: boolean): void {
  for (const other of ctx.state.list("price", (o) => o.lookup_key === key)) {
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
  const created = ctx.state.put(
    productObject(ctx.state, productData, newId("prod", 14), "product_data[name]"),
  );
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
function renderPrice(price: Obj, withTiers: boolean): Obj {
  if (withTiers && price.billing_scheme === "tiered") return price;
  const { tiers: _tiers, ...rest } = price;
  return rest;
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
      renderPrice(
        ctx.state.find("price", ctx.pathParams.id ?? "", "price"),
        expands(ctx.params).includes("tiers"),
      ),
  },
];
