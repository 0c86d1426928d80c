// The official OpenAI client reading a stream that the proxy ends with an error event (the backend died mid-stream).
// Environment: OPENAI_BASE_URL, OPENAI_API_KEY, LOPA_MODEL. Prints {name, status, code, received} as JSON.
import OpenAI from "openai";

const client = new OpenAI({ maxRetries: 0 });
let received = "";
let outcome = { name: "none" };
try {
  const stream = await client.chat.completions.create({
    model: process.env.LOPA_MODEL, messages: [{ role: "user", content: "Tom had a red kite" }], stream: true,
  });
  for await (const chunk of stream) received += chunk.choices[0]?.delta?.content ?? "";
} catch (e) {
  outcome = { name: e.constructor.name, status: e.status ?? null, code: e.code ?? e.error?.code ?? null, message: e.message };
}
process.stdout.write(JSON.stringify({ ...outcome, received }));
