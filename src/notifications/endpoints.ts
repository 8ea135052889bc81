import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Db } from "../platform/db.js";

/** What registering an endpoint takes, for the admin API and the CLI alike. */
export const endpointInputSchema = z.object({
  url: z
    .string()
    .max(2_048)
    .refine((value) => URL.canParse(value) && ["http:", "https:"].includes(new URL(value).protocol), {
      message: "url must be an http:// or https:// URL",
      params: { code: "invalid_url" },
    }),
  events: z
    .array(z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, "event types are 1-100 letters, digits, _ . -"))
    .max(100)
    .optional(),
});

/** An endpoint as operators see it after creation: never its secret. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  enabled: boolean;
  /** null: every event type. */
  events: string[] | null;
  createdAt: Date;
}

type Row = {
  id: string;
  url: string;
  enabled: boolean;
  event_types: string[] | null;
  created_at: Date;
};

const PUBLIC_COLUMNS = ["id", "url", "enabled", "event_types", "created_at"] as const;

const toEndpoint = (row: Row): WebhookEndpoint => ({
  id: row.id,
  url: row.url,
  enabled: row.enabled,
  events: row.event_types,
  createdAt: row.created_at,
});

/**
 * Registers an endpoint; the signing secret is returned here only, for the operator to give to the
 * receiver. Event types are exact names; none means every type.
 */
export async function createEndpoint(
  db: Db,
  input: { url: string; events?: readonly string[] },
): Promise<WebhookEndpoint & { secret: string }> {
  const secret = `whsec_${randomBytes(32).toString("hex")}`;
  const events = input.events && input.events.length > 0 ? [...new Set(input.events)] : null;
  const [row] = await db("webhook_endpoints")
    .insert({
      id: `we_${randomBytes(12).toString("hex")}`,
      url: input.url,
      secret,
      event_types: events,
    })
    .returning<Row[]>(PUBLIC_COLUMNS);
  return { ...toEndpoint(row!), secret };
}

export async function listEndpoints(db: Db): Promise<WebhookEndpoint[]> {
  const rows = await db("webhook_endpoints").orderBy("created_at").select<Row[]>(PUBLIC_COLUMNS);
  return rows.map(toEndpoint);
}

export async function endpointExists(db: Db, id: string): Promise<boolean> {
  return (await db("webhook_endpoints").where({ id }).first("id")) !== undefined;
}
