/** An OpenAI `chat.completion` as a provider answers it, with the usage it reports. */
export function chatCompletion(answer: {
  id: string;
  content: string;
  promptTokens: number;
  completionTokens: number;
}) {
  return {
    id: answer.id,
    object: "chat.completion" as const,
    created: 1,
    model: "gpt-4o-mini",
    choices: [
      {
        index: 0,
        message: { role: "assistant" as const, content: answer.content },
        finish_reason: "stop" as const,
      },
    ],
    usage: {
      prompt_tokens: answer.promptTokens,
      completion_tokens: answer.completionTokens,
      total_tokens: answer.promptTokens + answer.completionTokens,
    },
  };
}
