import { addInterval, subscriptionObject } from "./objects.js";
import { getPrice, renderPrice } from "./prices.js";
import type { Ctx, Route, State } from "./state.js";
import {
  invalid,
  isObj,
  mergeMetadata,
  missingParam,
  newId,
  noSuch,
  optArr,
  optBool,
  optInt,
  optStr,
  paginate,
  reqStr,
  type Obj,
  type Params,
} from "./util.js";

// Customers, products, subscriptions and read-only invoices/events. Unknown parameters are
// ignored here (these objects are modelled only as far as meterline needs them).

export function createCustomerObject(state: State, p: Params): Obj {
  const id = optStr(p, "id") ?? newId("cus", 14);
  if (state.objects.has(id))
    throw invalid(`Customer already exists: '${id}'`, "id", "resource_already_exists");
  return state.put({
    id,
    object: "customer",
    address: null,
    balance: 0,
    created: state.now(),
    currency: null,
    default_source: null,
    delinquent: false,
    description: optStr(p, "description") ?? null,
    email: optStr(p, "email") ?? null,
    invoice_prefix: id.slice(-8).toUpperCase(),
    livemode: false,
    metadata: mergeMetadata({}, p),
    name: optStr(p, "name") ?? null,
    phone: optStr(p, "phone") ?? null,
    preferred_locales: [],
    tax_exempt: "none",
    test_clock: null,
  });
}

function getCustomer(ctx: Ctx): Obj {
  const id = ctx.pathParams.id ?? "";
  const c = ctx.state.get("customer", id);
  if (!c) throw noSuch("customer", id);
  return c;
}

function updateCustomer(ctx: Ctx): Obj {
  const c = getCustomer(ctx);
  if (c.deleted === true) throw noSuch("customer", String(c.id));
  const p = ctx.params;
  return ctx.state.put({
    ...c,
    description: optStr(p, "description") ?? c.description,
    email: optStr(p, "email") ?? c.email,
    metadata: mergeMetadata(isObj(c.metadata) ? c.metadata : {}, p),
    name: optStr(p, "name") ?? c.name,
    phone: optStr(p, "phone") ?? c.phone,
  });
}

function createProduct(ctx: Ctx): Obj {
  const p = ctx.params;
  const id = optStr(p, "id") ?? newId("prod", 14);
  if (ctx.state.objects.has(id)) throw invalid(`Product already exists.`, "id", "resource_already_exists");
  const now = ctx.state.now();
  return ctx.state.put({
    id,
    object: "product",
    active: optBool(p, "active") ?? true,
    created: now,
    default_price: null,
    description: optStr(p, "description") ?? null,
    livemode: false,
    metadata: mergeMetadata({}, p),
    name: reqStr(p, "name"),
    type: "service",
    updated: now,
  });
}

function getProduct(ctx: Ctx): Obj {
  const id = ctx.pathParams.id ?? "";
  const product = ctx.state.get("product", id);
  if (!product) throw noSuch("product", id);
  return product;
}

function createSubscription(ctx: Ctx): Obj {
  const p = ctx.params;
  const customer = reqStr(p, "customer");
  if (!ctx.state.customerExists(customer)) throw noSuch("customer", customer, "customer", 400);
  const items = optArr(p, "items");
  if (!items || items.length === 0) throw missingParam("items");
  const now = ctx.state.now();
  const specs = items.map((raw, i) => {
    if (!isObj(raw)) throw invalid("Invalid item", `items[${i}]`);
    const priceId = optStr(raw, "price", `items[${i}][price]`);
    if (!priceId) throw missingParam(`items[${i}][price]`);
    const price = getPrice(ctx, priceId, `items[${i}][price]`, 400);
    const recurring = isObj(price.recurring) ? price.recurring : undefined;
    if (!recurring) {
      throw invalid(`The price specified (${priceId}) is not recurring.`, `items[${i}][price]`);
    }
    if (price.active !== true)
      throw invalid(`The price specified (${priceId}) is inactive.`, `items[${i}][price]`);
    let quantity = optInt(raw, "quantity", `items[${i}][quantity]`);
    if (recurring.usage_type === "metered") {
      if (quantity !== undefined) {
        throw invalid(
          "Quantity should not be specified where usage_type is `metered`.",
          `items[${i}][quantity]`,
        );
      }
    } else quantity ??= 1;
    return { price: renderPrice(price, false), quantity, recurring };
  });
  const first = specs[0]?.recurring ?? {};
  const trialDays = optInt(p, "trial_period_days");
  const periodEnd = trialDays
    ? now + trialDays * 86_400
    : addInterval(now, String(first.interval ?? "month"), Number(first.interval_count ?? 1));
  const sub = subscriptionObject({
    customer,
    status: trialDays ? "trialing" : "active",
    priceId: "",
    items: specs.map((s) => ({ price: s.price, quantity: s.quantity })),
    periodStart: now,
    periodEnd,
    metadata: mergeMetadata({}, p) as Record<string, string>,
    cancelAtPeriodEnd: optBool(p, "cancel_at_period_end") ?? false,
    currency: String(specs[0]?.price.currency ?? "usd"),
    created: now,
  });
  if (trialDays) Object.assign(sub, { trial_start: now, trial_end: periodEnd });
  return ctx.state.put(sub);
}

function getSubscription(ctx: Ctx): Obj {
  const id = ctx.pathParams.id ?? "";
  const sub = ctx.state.get("subscription", id);
  if (!sub) throw noSuch("subscription", id);
  return sub;
}

function updateSubscription(ctx: Ctx): Obj {
  const sub = getSubscription(ctx);
  const p = ctx.params;
  const cancelAtPeriodEnd = optBool(p, "cancel_at_period_end");
  const items = isObj(sub.items) && Array.isArray(sub.items.data) ? sub.items.data : [];
  const periodEnd = items.map((it: unknown) => (isObj(it) ? Number(it.current_period_end) : 0))[0] ?? null;
  return ctx.state.put({
    ...sub,
    metadata: mergeMetadata(isObj(sub.metadata) ? sub.metadata : {}, p),
    ...(cancelAtPeriodEnd === undefined
      ? {}
      : { cancel_at_period_end: cancelAtPeriodEnd, cancel_at: cancelAtPeriodEnd ? periodEnd : null }),
  });
}

function cancelSubscription(ctx: Ctx): Obj {
  const sub = getSubscription(ctx);
  if (sub.status === "canceled") {
    throw invalid(`A canceled subscription can only update its cancellation_details.`, undefined);
  }
  const now = ctx.state.now();
  return ctx.state.put({ ...sub, status: "canceled", canceled_at: now, ended_at: now });
}

function invoiceSubscription(o: Obj): unknown {
  const parent = isObj(o.parent) ? o.parent : {};
  return isObj(parent.subscription_details) ? parent.subscription_details.subscription : undefined;
}

function getStored(kind: string, label: string) {
  return (ctx: Ctx): Obj => {
    const id = ctx.pathParams.id ?? "";
    const o = ctx.state.get(kind, id);
    if (!o) throw noSuch(label, id);
    return o;
  };
}

export const catalogRoutes: Route[] = [
  {
    method: "POST",
    template: "/v1/customers",
    handler: (ctx) => createCustomerObject(ctx.state, ctx.params),
  },
  {
    method: "GET",
    template: "/v1/customers",
    handler: (ctx) => {
      const email = optStr(ctx.params, "email");
      const list = ctx.state.list(
        "customer",
        (c) => c.deleted !== true && (email === undefined || c.email === email),
      );
      return paginate(list, ctx.params, "/v1/customers");
    },
  },
  { method: "GET", template: "/v1/customers/:id", handler: getCustomer },
  { method: "POST", template: "/v1/customers/:id", handler: updateCustomer },
  {
    method: "DELETE",
    template: "/v1/customers/:id",
    handler: (ctx) => {
      const c = getCustomer(ctx);
      if (c.deleted === true) throw noSuch("customer", String(c.id));
      return ctx.state.put({ id: c.id, object: "customer", deleted: true });
    },
  },
  { method: "POST", template: "/v1/products", handler: createProduct },
  {
    method: "GET",
    template: "/v1/products",
    handler: (ctx) => {
      const active = optBool(ctx.params, "active");
      const list = ctx.state.list("product", (o) => active === undefined || o.active === active);
      return paginate(list, ctx.params, "/v1/products");
    },
  },
  { method: "GET", template: "/v1/products/:id", handler: getProduct },
  {
    method: "POST",
    template: "/v1/products/:id",
    handler: (ctx) => {
      const prod = getProduct(ctx);
      const p = ctx.params;
      return ctx.state.put({
        ...prod,
        active: optBool(p, "active") ?? prod.active,
        description: optStr(p, "description") ?? prod.description,
        metadata: mergeMetadata(isObj(prod.metadata) ? prod.metadata : {}, p),
        name: optStr(p, "name") ?? prod.name,
        updated: ctx.state.now(),
      });
    },
  },
  { method: "POST", template: "/v1/subscriptions", handler: createSubscription },
  {
    method: "GET",
    template: "/v1/subscriptions",
    handler: (ctx) => {
      const customer = optStr(ctx.params, "customer");
      const status = optStr(ctx.params, "status");
      const list = ctx.state.list(
        "subscription",
        (s) =>
          (customer === undefined || s.customer === customer) &&
          (status === "all" || (status === undefined ? s.status !== "canceled" : s.status === status)),
      );
      return paginate(list, ctx.params, "/v1/subscriptions");
    },
  },
  { method: "GET", template: "/v1/subscriptions/:id", handler: getSubscription },
  { method: "POST", template: "/v1/subscriptions/:id", handler: updateSubscription },
  { method: "DELETE", template: "/v1/subscriptions/:id", handler: cancelSubscription },
  {
    method: "GET",
    template: "/v1/invoices",
    handler: (ctx) => {
      const customer = optStr(ctx.params, "customer");
      const subscription = optStr(ctx.params, "subscription");
      const status = optStr(ctx.params, "status");
      const list = ctx.state.list(
        "invoice",
        (o) =>
          (customer === undefined || o.customer === customer) &&
          (subscription === undefined || invoiceSubscription(o) === subscription) &&
          (status === undefined || o.status === status),
      );
      return paginate(list, ctx.params, "/v1/invoices");
    },
  },
  { method: "GET", template: "/v1/invoices/:id", handler: getStored("invoice", "invoice") },
  {
    method: "GET",
    template: "/v1/events",
    handler: (ctx) => {
      const type = optStr(ctx.params, "type");
      const types = optArr(ctx.params, "types")?.map(String);
      const created = ctx.params.created;
      const gte = isObj(created) ? optInt(created, "gte", "created[gte]") : optInt(ctx.params, "created");
      const list = ctx.state.list(
        "event",
        (e) =>
          (type === undefined || matchesType(String(e.type), type)) &&
          (types === undefined || types.includes(String(e.type))) &&
          (gte === undefined || Number(e.created) >= gte),
      );
      return paginate(list, ctx.params, "/v1/events");
    },
  },
  { method: "GET", template: "/v1/events/:id", handler: getStored("event", "event") },
];

/** `type` filter supports Stripe's `*` wildcard, e.g. "invoice.*". */
function matchesType(actual: string, pattern: string): boolean {
  if (!pattern.includes("*")) return actual === pattern;
  const re = new RegExp(
    `^${pattern
      .split("*")
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
  return re.test(actual);
}
