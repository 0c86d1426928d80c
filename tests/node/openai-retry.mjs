// The official OpenAI client meets a tenant's rate limit: it waits as the proxy's retry-after-ms / Retry-After say,
// retries and succeeds. Environment: OPENAI_BASE_URL, OPENAI_API_KEY. Prints a JSON summary of every attempt.
import OpenAI from "openai";

const baseURL = process.env.OPENAI_BASE_URL;
const apiKey = process.env.OPENAI_API_KEY;
const body = { model: "stories260K", messages: [{ role: "user", content: "Tom had a red kite" }], max_tokens: 2 };

// Spend the minute's burst with plain requests until the proxy refuses one.
let spent = 0;
for (;;) {
  const r = await fetch(`${baseURL}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await r.text();
  if (r.status === 429) break;
  if (++spent > 1000) throw new Error("the proxy never limited the tenant");
}

const attempts = [];
async function recordingFetch(url, init) {
  const at = Date.now();
  const response = await fetch(url, init);
  attempts.push({
    status: response.status, at,
    retryAfter: response.headers.get("retry-after"), retryAfterMs: response.headers.get("retry-after-ms"),
  });
  return response;
}
const client = new OpenAI({ fetch: recordingFetch, maxRetries: 3 });
const chat = await client.chat.completions.create(body);
process.stdout.write(JSON.stringify({ spent, attempts, content: chat.choices[0].message.content }));
