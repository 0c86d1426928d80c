// The Vercel AI SDK (ai + @ai-sdk/openai), unmodified, against the proxy: its default provider call
// (openai(model): the Responses API) with generateText and streamText, and the chat-completions provider
// (openai.chat(model)). Environment: OPENAI_BASE_URL, OPENAI_API_KEY, LOPA_MODEL. Prints a JSON summary.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";

const openai = createOpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY });
const model = process.env.LOPA_MODEL;
const settings = { prompt: "Tom had a red kite", maxOutputTokens: 12, temperature: 0 };
const generated = await generateText({ model: openai(model), ...settings });
const stream = streamText({ model: openai(model), ...settings });
let streamed = "";
for await (const delta of stream.textStream) streamed += delta;
const streamedUsage = await stream.usage;
const chat = await generateText({ model: openai.chat(model), ...settings });
process.stdout.write(JSON.stringify({
  generated: { text: generated.text, inputTokens: generated.usage.inputTokens,
    outputTokens: generated.usage.outputTokens },
  streamed: { text: streamed, inputTokens: streamedUsage.inputTokens, outputTokens: streamedUsage.outputTokens },
  chat: { text: chat.text, inputTokens: chat.usage.inputTokens, outputTokens: chat.usage.outputTokens },
}));
