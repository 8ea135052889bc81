import { listApiKeys, type ApiKeyInfo } from "../billing/customers/api-keys.js";
import {
  createApiKey,
  createCustomer,
  findCustomer,
  listCustomers,
  revokeApiKey,
  updateCustomer,
  type Customer,
  type CustomerStatus,
} from "../billing/customers/customers.js";
import { KEY_CACHE_TTL_MS } from "../billing/customers/key-cache.js";
import { portalSecret, portalSession, signPortalLink } from "../billing/customers/portal-links.js";
import { seedDefaultPlans } from "../billing/pricing/plans.js";
import { optionalFlag, requireFlag, type CliContext } from "./context.js";
import { NotFoundError, UsageError } from "../errors.js";

export async function customersCreate(ctx: CliContext): Promise<void> {
  const input = {
    name: requireFlag(ctx, "name"),
    email: optionalFlag(ctx, "email"),
    planId: optionalFlag(ctx, "plan"),
    stripeCustomerId: optionalFlag(ctx, "stripe-customer"),
  };
  const db = ctx.db();
  await seedDefaultPlans(db);
  const customer = await createCustomer(db, input);
  ctx.print(`created customer ${customer.id} (${customer.name}) on plan ${customer.planId}`, customer);
}

export async function keysCreate(ctx: CliContext): Promise<void> {
  const customerId = requireFlag(ctx, "customer");
  const key = await createApiKey(ctx.db(), customerId);
  ctx.print(`API key for ${customerId} (shown once, store it now):\n${key.key}`, {
    customerId,
    id: key.id,
    prefix: key.prefix,
    key: key.key,
  });
}

const STATUSES: readonly CustomerStatus[] = ["active", "past_due", "suspended", "canceled"];

function statusFlag(ctx: CliContext): CustomerStatus | undefined {
  const status = optionalFlag(ctx, "status");
  if (status !== undefined && !STATUSES.includes(status as CustomerStatus))
    throw new UsageError(`--status must be one of ${STATUSES.join(", ")}`);
  return status as CustomerStatus | undefined;
}

export async function customersUpdate(ctx: CliContext): Promise<void> {
  const id = requireFlag(ctx, "customer");
  const planId = optionalFlag(ctx, "plan");
  const status = statusFlag(ctx);
  if (planId === undefined && status === undefined) throw new UsageError("give --plan and/or --status");
  const customer = await updateCustomer(ctx.db(), id, { planId, status });
  ctx.print(`customer ${customer.id} is on plan ${customer.planId}, status ${customer.status}`, customer);
}

const describeCustomer = (c: Customer) =>
  `${c.id}  ${c.status.padEnd(9)}  ${c.planId.padEnd(8)}  ${(c.stripeCustomerId ?? "-").padEnd(18)}  ` +
  `${c.name}${c.email ? ` <${c.email}>` : ""}`;

export async function customersList(ctx: CliContext): Promise<void> {
  const customers = await listCustomers(ctx.db(), { status: statusFlag(ctx) });
  ctx.print(customers.length ? customers.map(describeCustomer).join("\n") : "no customers", customers);
}

const describeKey = (k: ApiKeyInfo) =>
  `${String(k.id).padStart(6)}  ${k.prefix}…  ${k.customerId}  created ${k.createdAt.toISOString()}  ` +
  `last used ${k.lastUsedAt?.toISOString() ?? "never"}  ` +
  (k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : "active");

/** keys:list [--customer id]: ids and prefixes only; a key's secret is never stored, so never shown. */
export async function keysList(ctx: CliContext): Promise<void> {
  const keys = await listApiKeys(ctx.db(), { customerId: optionalFlag(ctx, "customer") });
  ctx.print(keys.length ? keys.map(describeKey).join("\n") : "no API keys", keys);
}

/** keys:revoke <key id>: safe to repeat; web processes refuse the key within KEY_CACHE_TTL_MS. */
export async function keysRevoke(ctx: CliContext): Promise<void> {
  const id = ctx.args[0];
  if (id === undefined || !/^[1-9]\d{0,14}$/.test(id)) throw new UsageError("give a key id (see keys:list)");
  const db = ctx.db();
  const [before] = await listApiKeys(db, { id: Number(id) });
  if (!before) throw new NotFoundError(`no API key ${id}`);
  if (!before.revokedAt) await revokeApiKey(db, before.id);
  const [key = before] = await listApiKeys(db, { id: before.id });
  const what = `key ${id} (${key.prefix}…) of ${key.customerId}`;
  ctx.print(
    before.revokedAt
      ? `${what} was already revoked at ${before.revokedAt.toISOString()}`
      : `revoked ${what}; the API refuses it within ${KEY_CACHE_TTL_MS / 1000} s (web processes cache key lookups that long)`,
    { ...key, alreadyRevoked: before.revokedAt !== null, refusedWithinMs: KEY_CACHE_TTL_MS },
  );
}

/** customers:portal: a signed one-hour portal link for one customer, as POST …/portal-sessions gives. */
export async function customersPortal(ctx: CliContext): Promise<void> {
  const id = requireFlag(ctx, "customer");
  const secret = portalSecret(ctx.config);
  if (!secret) throw new UsageError("the portal needs PORTAL_SECRET or ADMIN_TOKEN");
  if (!(await findCustomer(ctx.db(), id))) throw new NotFoundError(`no customer "${id}"`);
  const base = ctx.config.publicUrl ?? `http://localhost:${ctx.config.port}`;
  const session = portalSession(base, signPortalLink(secret, id));
  ctx.print(`portal for ${id}, valid until ${session.expires_at}:\n${session.url}`, session);
}
