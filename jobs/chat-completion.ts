import { UnrecoverableError, type Job } from "bullmq";
import type { Db } from "../src/db.js";
import { PermanentError } from "../src/errors.js";
import type { Logger } from "../src/logger.js";
import { recordUsage } from "../src/billing/ledger.js";
import { listPriceMicros, type Plan } from "../src/billing/plans.js";
import { priceFor, providerCostMicros, resolvePrice } from "../src/billing/prices.js";
import type { Quota } from "../src/billing/quota.js";
import type { Config } from "../src/config.js";
import { classifyLlmError, type ChatCompletion, type ChatRequest, type Llm } from "../src/llm/client.js";
import { estimateUsage, usageFromProvider } from "../src/llm/usage.js";
import { chatJobSchema, type ChatJobData } from "../src/queues.js";

type Deps = {
  db: Db;
  llm: Pick<Llm, "complete">;
  logger: Logger;
  plans: { get(id: string): Promise<Plan> };
  quota: Pick<Quota, "settle">;
  config: Pick<Config, "defaultModelPrice">;
};

/** Processes one chat: call the LLM at most once per answer, then write the usage row exactly once. */
export function createChatCompletionProcessor(deps: Deps) {
  return async (job: Job<ChatJobData>): Promise<ChatCompletion> => {
    const data = chatJobSchema.parse(job.data);
    const log = deps.logger.child({
      requestId: data.requestId,
      jobId: job.id,
      attempt: job.attemptsMade + 1,
    });

    let completion = data.completion as ChatCompletion | undefined;
    if (completion) {
      log.info("reusing the LLM answer kept on the job");
    } else {
      completion = await callLlm(deps.llm, data.request as ChatRequest, job, data);
      // Keep the answer on the job before the ledger write: if this worker dies between the two,
      // the retry bills from this answer instead of paying the LLM twice.
      await job.updateData({ ...data, completion: completion as unknown as ChatJobData["completion"] });
    }

    const plan = await deps.plans.get(data.planId);
    const usage = completion.usage
      ? { tokens: usageFromProvider(completion.usage), source: "provider" as const }
      : {
          tokens: estimateUsage(data.request.messages, completion.choices[0]?.message?.content ?? ""),
          source: "estimated" as const,
        };
    const price =
      priceFor(completion.model) ?? resolvePrice(data.request.model, deps.config.defaultModelPrice);
    if (!price) throw new UnrecoverableError(`no price for model ${data.request.model}`);
    const billableTokens = usage.tokens.promptTokens + usage.tokens.completionTokens;

    const inserted = await recordUsage(deps.db, {
      requestId: data.requestId,
      customerId: data.customerId,
      model: data.request.model,
      ...usage.tokens,
      billableTokens,
      providerCostMicros: providerCostMicros(usage.tokens, price),
      priceMicros: listPriceMicros(plan, billableTokens),
      source: usage.source,
      planId: plan.id,
    });
    // After the row, keyed by request id: a retry that finds the row already written still settles,
    // and a second settle of the same request changes nothing.
    if (data.quota) await deps.quota.settle(data.customerId, data.requestId, data.quota, billableTokens);
    log.info(
      { inserted, billableTokens, source: usage.source },
      inserted ? "usage recorded" : "usage already recorded",
    );
    return completion;
  };
}

async function callLlm(llm: Deps["llm"], request: ChatRequest, job: Job<ChatJobData>, data: ChatJobData) {
  try {
    return await llm.complete(request);
  } catch (err) {
    const classified = classifyLlmError(err);
    if (classified instanceof PermanentError) {
      // The caller waits on this job: leave it the provider's status and message, then fail at once.
      await job.updateData({
        ...data,
        error: {
          status: classified.status,
          message: classified.message,
          type: classified.type,
          code: classified.code,
        },
      });
      throw new UnrecoverableError(classified.message);
    }
    throw classified;
  }
}
