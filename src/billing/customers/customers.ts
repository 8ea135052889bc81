import { randomBytes } from "node:crypto";
import type { Db } from "../../platform/db.js";
import { NotFoundError } from "../../errors.js";
import { sha256 } from "../../platform/ids.js";
import { generateApiKey } from "./api-keys.js";
import { planColumns, planFromRow, type Plan, type PlanRow } from "../pricing/plans.js";

export type CustomerStatus = "active" | "past_due" | "suspended" | "canceled";

export interface Customer {
  id: string;
  name: string;
  email: string | null;
  planId: string;
  stripeCustomerId: string | null;
  status: CustomerStatus;
}

export interface AuthenticatedCustomer {
  customerId: string;
  status: CustomerStatus;
  plan: Plan;
  keyId: number;
}

export async function createCustomer(
  db: Db,
  input: { name: string; email?: string; planId?: string; stripeCustomerId?: string },
): Promise<Customer> {
  const planId = input.planId ?? "usage";
  const plan = await db("plans").where({ id: planId }).first("id");
  if (!plan) throw new NotFoundError(`no plan "${planId}"`);
  const id = `cust_${randomBytes(12).toString("base64url").replace(/[-_]/g, "x")}`;
  const [row] = await db("customers")
    .insert({
      id,
      name: input.name,
      email: input.email ?? null,
      plan_id: planId,
      stripe_customer_id: input.stripeCustomerId ?? null,
    })
    .returning("*");
  return customerFromRow(row);
}

/** Creates an API key for a customer; the plain key is returned once and never stored. */
export async function createApiKey(
  db: Db,
  customerId: string,
): Promise<{ id: number; key: string; prefix: string }> {
  const customer = await db("customers").where({ id: customerId }).first("id");
  if (!customer) throw new NotFoundError(`no customer "${customerId}"`);
  const { key, prefix, hash } = generateApiKey();
  const [row] = await db("api_keys")
    .insert({ customer_id: customerId, prefix, key_hash: hash })
    .returning("id");
  return { id: row.id, key, prefix };
}

/** Moves a customer to another plan and/or status; the new plan prices usage from now on. */
export async function updateCustomer(
  db: Db,
  id: string,
  changes: { planId?: string; status?: CustomerStatus },
): Promise<Customer> {
  if (changes.planId !== undefined) {
    const plan = await db("plans").where({ id: changes.planId }).first("id");
    if (!plan) throw new NotFoundError(`no plan "${changes.planId}"`);
  }
  const [row] = await db("customers")
    .where({ id })
    .update({
      ...(changes.planId !== undefined ? { plan_id: changes.planId } : {}),
      ...(changes.status !== undefined ? { status: changes.status } : {}),
      updated_at: db.fn.now(),
    })
    .returning("*");
  if (!row) throw new NotFoundError(`no customer "${id}"`);
  return customerFromRow(row);
}

/** Customers, oldest first, optionally those of one status. */
export async function listCustomers(db: Db, filter: { status?: CustomerStatus } = {}): Promise<Customer[]> {
  const query = db("customers").orderBy([{ column: "created_at" }, { column: "id" }]);
  if (filter.status !== undefined) query.where({ status: filter.status });
  return (await query).map(customerFromRow);
}

export async function revokeApiKey(db: Db, keyId: number): Promise<void> {
  await db("api_keys").where({ id: keyId }).whereNull("revoked_at").update({ revoked_at: db.fn.now() });
}

/** The customer behind an API key, or undefined for an unknown or revoked key. */
export async function authenticateKey(db: Db, key: string): Promise<AuthenticatedCustomer | undefined> {
  const row = await db("api_keys as k")
    .join("customers as c", "c.id", "k.customer_id")
    .join("plans as p", "p.id", "c.plan_id")
    .where("k.key_hash", sha256(key))
    .whereNull("k.revoked_at")
    .first("k.id as key_id", "c.id as customer_id", "c.status", ...planColumns("p"));
  if (!row) return undefined;
  touchKey(db, row.key_id);
  return {
    customerId: row.customer_id,
    status: row.status,
    plan: planFromRow(row as PlanRow),
    keyId: row.key_id,
  };
}

function customerFromRow(row: Record<string, unknown>): Customer {
  return {
    id: row.id as string,
    name: row.name as string,
    email: (row.email as string | null) ?? null,
    planId: row.plan_id as string,
    stripeCustomerId: (row.stripe_customer_id as string | null) ?? null,
    status: row.status as CustomerStatus,
  };
}

/**
 * Records that a key was used, at most once a minute per key (the API caches lookups, so this runs
 * on a cache miss only). Best effort: a failed touch never fails the request.
 */
function touchKey(db: Db, keyId: number): void {
  db("api_keys")
    .where({ id: keyId })
    .andWhere((q) =>
      q.whereNull("last_used_at").orWhere("last_used_at", "<", db.raw("now() - interval '1 minute'")),
    )
    .update({ last_used_at: db.fn.now() })
    .catch(() => {});
}

/** One customer, or undefined when there is none with that id. */
export async function findCustomer(db: Db, id: string): Promise<Customer | undefined> {
  const row = await db("customers").where({ id }).first();
  return row ? customerFromRow(row) : undefined;
}
