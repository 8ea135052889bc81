import { Router } from "express";
import { z } from "zod";
import type { Deps } from "../../deps.js";
import { HttpError, NotFoundError, notFound } from "../../errors.js";
import { jsonBody, parseInput, positiveIdParams } from "../input.js";
import { CREDIT_SOURCES, type CreditSource } from "../../billing/credits/account.js";
import { creditBalance, creditLedger } from "../../billing/credits/balance.js";
import { grantCredits, voidGrant } from "../../billing/credits/grants.js";
import { evaluateBalanceAlerts } from "../../billing/alerts/evaluate.js";

const MAX_MICROS = Number.MAX_SAFE_INTEGER;
const AMOUNT = { error: "amount_micros must be a positive integer (micro-dollars: 1000000 = $1)." };
const EXPIRES = {
  error: "expires_at must be an ISO 8601 date or date-time, e.g. 2027-01-31 or 2027-01-31T12:00:00Z.",
};
const grantBody = jsonBody(
  z.object({
    amount_micros: z.number(AMOUNT).int(AMOUNT).min(1, AMOUNT).max(MAX_MICROS, AMOUNT),
    source: z
      .enum(CREDIT_SOURCES as [CreditSource, ...CreditSource[]], {
        error: `source must be one of ${CREDIT_SOURCES.join(", ")}.`,
      })
      .default("manual"),
    expires_at: z
      .union([z.iso.date(), z.iso.datetime({ offset: true })], EXPIRES)
      .optional()
      .transform((v) => (v === undefined ? undefined : new Date(v))),
    reference: z.string().min(1).max(255).optional(),
  }),
);
const ledgerQuery = z.object({
  limit: z
    .string()
    .optional()
    .refine((v) => v === undefined || (/^\d{1,3}$/.test(v) && +v >= 1 && +v <= 500), {
      message: "limit must be an integer from 1 to 500",
      params: { code: "invalid_limit" },
    })
    .transform((v) => (v === undefined ? 20 : Number(v))),
  before: z
    .string()
    .optional()
    .refine((v) => v === undefined || /^[1-9]\d{0,14}$/.test(v), {
      message: "before must be a ledger entry id",
      params: { code: "invalid_id" },
    })
    .transform((v) => (v === undefined ? undefined : Number(v))),
});

const grantParams = positiveIdParams("The credit grant id must be a positive integer.");

/** Customers' prepaid credits for operators, mounted under the authenticated /admin. */
export function adminCreditRoutes(
  deps: Pick<Deps, "db" | "creditCounter" | "config" | "logger" | "queues" | "plans">,
): Router {
  const router = Router();

  // 201 with the new grant; 200 with the existing one when its reference was granted before.
  router.post("/customers/:id/credits", async (req, res) => {
    const customerId = String(req.params.id);
    const body = parseInput(grantBody, req.body);
    const input = {
      customerId,
      amountMicros: body.amount_micros,
      source: body.source,
      expiresAt: body.expires_at,
      reference: body.reference,
    };
    const { grant, created } = await grantCredits(deps.db, input).catch((err: unknown) => {
      throw err instanceof NotFoundError ? notFound(`No customer ${customerId}.`) : err;
    });
    if (grant.customerId !== customerId)
      throw new HttpError(
        409,
        `Reference ${grant.reference} was already granted to another customer.`,
        "invalid_request_error",
        "reference_in_use",
      );
    // Real-time spending sees the grant at once (src/billing/credits/counter.ts).
    if (created) {
      await deps.creditCounter.adjust(customerId, grant.amountMicros);
      await evaluateBalanceAlerts(deps, customerId);
    }
    res.status(created ? 201 : 200).json({ object: "credit_grant", ...grant });
  });

  // Takes what is left of a grant out of the balance (a refund, a mistaken grant); idempotent.
  router.post("/credit-grants/:id/void", async (req, res) => {
    const { id } = parseInput(grantParams, req.params);
    const voided = await voidGrant(deps.db, id).catch((err: unknown) => {
      throw err instanceof NotFoundError ? notFound(`No credit grant ${id}.`) : err;
    });
    await deps.creditCounter.adjust(voided.customerId, -voided.voidedMicros);
    if (voided.voidedMicros > 0) await evaluateBalanceAlerts(deps, voided.customerId);
    res.json({
      object: "credit_grant_void",
      grant_id: id,
      customer_id: voided.customerId,
      voided_micros: voided.voidedMicros,
    });
  });

  router.get("/customers/:id/credits", async (req, res) => {
    const customerId = String(req.params.id);
    const page = parseInput(ledgerQuery, req.query);
    if (!(await deps.db("customers").where({ id: customerId }).first("id")))
      throw notFound(`No customer ${customerId}.`);
    const [balance, entries] = await Promise.all([
      creditBalance(deps.db, customerId),
      creditLedger(deps.db, customerId, page),
    ]);
    res.json({ object: "credit_balance", customer_id: customerId, balance_micros: balance, ledger: entries });
  });

  return router;
}
