import type { Config } from "../config.js";
import type { Db } from "../platform/db.js";
import { PermanentError } from "../errors.js";
import type { Metrics } from "../platform/metrics.js";
import { billChat } from "../billing/ledger/bill-chat.js";
import type { AfterUsageDeps } from "../billing/after-usage.js";
import type { Plan } from "../billing/pricing/plans.js";
import type { EndUserQuota, Quota } from "../billing/ledger/quota.js";
import { classifyLlmError, type ChatCompletion, type ChatRequest, type Llm } from "../llm/client.js";
import { logProviderError } from "../llm/provider-errors.js";
import { capCompletion } from "../llm/completion-cap.js";
import type { ChatJobData } from "../queues/queues.js";
import { chatUsage, completionCap, refusalOf, type ChatAttempt } from "./attempt.js";

export type CompletionRunDeps = AfterUsageDeps & {
  db: Db;
  llm: Pick<Llm, "complete">;
  plans: { get(id: string): Promise<Plan> };
  quota: Pick<Quota, "settle">;
  endUserQuota: Pick<EndUserQuota, "settle">;
  config: Config;
  metrics: Pick<Metrics, "tokens" | "modelLabel">;
};

/**
 * A plain (not streamed) chat: call the LLM at most once per answer — with its completion capped at
 * what its hard-limit, end-user and credit reservations cover — then write the usage row (and a kept chat's answer) exactly once.
 */
export async function runCompletion(deps: CompletionRunDeps, attempt: ChatAttempt): Promise<ChatCompletion> {
  const { data, log } = attempt;
  const kept = data.completion as ChatCompletion | undefined;
  if (kept) log.info("reusing the LLM answer kept on the job");
  const request = capCompletion(data.request as ChatRequest, completionCap(data));
  const completion = kept ?? (await callLlm(deps.llm, request, attempt));

  const answer = completion.choices[0]?.message?.content ?? "";
  const usage = await chatUsage(data.request, completion.usage, answer);
  let billed: Awaited<ReturnType<typeof billChat>>;
  try {
    billed = await billChat(deps, data, completion, usage);
  } catch (err) {
    // The ledger could not be written (Postgres away): keep the answer on the job so the retry
    // bills it instead of paying the LLM twice. Redis holds the completion only then.
    if (!kept) await attempt.keep({ completion: completion as unknown as ChatJobData["completion"] });
    throw err;
  }
  const { inserted, billableTokens } = billed;
  log.info(
    { inserted, billableTokens, source: usage.source, chargeMicros: billed.charge.chargeMicros },
    inserted ? "usage recorded" : "usage already recorded",
  );
  return billed.completion;
}

async function callLlm(llm: CompletionRunDeps["llm"], request: ChatRequest, attempt: ChatAttempt) {
  try {
    return await llm.complete(request, { signal: attempt.signal });
  } catch (err) {
    await attempt.handBackIfShuttingDown();
    const classified = classifyLlmError(err);
    logProviderError(attempt.log, err);
    // The caller waits on this job: leave it what it may see of the refusal, then fail at once.
    if (classified instanceof PermanentError) await attempt.keep({ error: refusalOf(classified) });
    throw classified;
  }
}
