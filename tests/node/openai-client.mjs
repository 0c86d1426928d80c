// The official OpenAI client, unmodified, talking to the proxy: chat, completions and streaming with a tenant key.
// Environment: OPENAI_BASE_URL, OPENAI_API_KEY, LOPA_MODEL (e.g. "stories260K:demo"). Prints a JSON summary.
import OpenAI from "openai";

const client = new OpenAI(); // reads OPENAI_BASE_URL and OPENAI_API_KEY, as any SDK user's code does
const model = process.env.LOPA_MODEL;
const chat = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Tom had a red kite" }], max_tokens: 12, temperature: 0 });
const completion = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 12, temperature: 0 });
const stream = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Lily saw a cat" }], max_tokens: 12, temperature: 0, stream: true });
let streamed = "", chunks = 0;
for await (const chunk of stream) { streamed += chunk.choices[0]?.delta?.content ?? ""; chunks++; }
let error = null;
try { await new OpenAI({ apiKey: "sk-wrong-key-0000000000" }).chat.completions.create({ model, messages: [{ role: "user", content: "x" }] }); }
catch (e) { error = { status: e.status, code: e.code, type: e.type }; }
const retrieved = await client.models.retrieve(model); // GET /v1/models/{id}, as SDKs and UIs call it
let missing = null;
try { await client.models.retrieve(model + "-nobody-has-this"); }
catch (e) { missing = { status: e.status, code: e.code }; }
process.stdout.write(JSON.stringify({
  chat: chat.choices[0].message.content, chatUsage: chat.usage, completion: completion.choices[0].text, streamed, chunks, error,
  retrieved: { id: retrieved.id, object: retrieved.object, owned_by: retrieved.owned_by }, missing,
}));
