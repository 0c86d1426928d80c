// LangChain's ChatOpenAI (@langchain/openai), unmodified, against the proxy: invoke, stream, useResponsesApi, and
// withStructuredOutput (a JSON schema the reference model server turns into a grammar). Environment:
// OPENAI_BASE_URL, OPENAI_API_KEY, LOPA_MODEL. Prints a JSON summary.
import { ChatOpenAI } from "@langchain/openai";

const options = { model: process.env.LOPA_MODEL, temperature: 0, maxTokens: 12, maxRetries: 0,
  apiKey: process.env.OPENAI_API_KEY, configuration: { baseURL: process.env.OPENAI_BASE_URL } };
const prompt = "Tom had a red kite";
const chat = new ChatOpenAI(options);
const invoked = await chat.invoke(prompt);
let streamed = "";
for await (const chunk of await chat.stream(prompt)) streamed += chunk.content;
const responses = await new ChatOpenAI({ ...options, useResponsesApi: true }).invoke(prompt);
const schema = { title: "Sentiment", type: "object",
  properties: { sentiment: { type: "string", enum: ["positive", "negative"] } }, required: ["sentiment"] };
const structured = await new ChatOpenAI({ ...options, maxTokens: 60 }).withStructuredOutput(schema)
  .invoke("a gorgeous movie. Sentiment:");
process.stdout.write(JSON.stringify({
  invoked: { text: invoked.content, usage: invoked.usage_metadata ?? null },
  streamed,
  responses: { text: typeof responses.content === "string" ? responses.content : responses.text },
  structured,
}));
