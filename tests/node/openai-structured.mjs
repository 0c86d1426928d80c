// The official OpenAI client through the proxy with an adapter: JSON output (response_format json_object), JSON
// under a schema (json_schema, on chat and on the Responses API's text.format), a schema keyword the reference
// server's grammar cannot hold (refused by name), a token steered by logit_bias, and logprobs. Environment:
// OPENAI_BASE_URL, OPENAI_API_KEY, LOPA_MODEL, DOT_TOKEN (the model's token id of "."). Prints a JSON summary.
import OpenAI from "openai";

const client = new OpenAI();
const model = process.env.LOPA_MODEL;
const messages = [{ role: "user", content: "Tom had a red kite" }];
const sentiment = { type: "object", properties: { sentiment: { type: "string", enum: ["positive", "negative"] } },
  required: ["sentiment"], additionalProperties: false };

const json = await client.chat.completions.create({ model, messages, max_tokens: 40, temperature: 0,
  response_format: { type: "json_object" } });
const forced = await client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 0,
  logit_bias: { [process.env.DOT_TOKEN]: 100 } });
const schemaChat = await client.chat.completions.create({ model, messages, max_tokens: 60,
  response_format: { type: "json_schema", json_schema: { name: "sentiment", strict: true, schema: sentiment } } });
const schemaResponse = await client.responses.create({ model, input: "Tom had a red kite", max_output_tokens: 60,
  store: false, text: { format: { type: "json_schema", name: "sentiment", strict: true, schema: sentiment } } });
let refused = null;
try {
  await client.chat.completions.create({ model, messages, max_tokens: 4, response_format: { type: "json_schema",
    json_schema: { name: "s", schema: { type: "string", pattern: "^[a-z]+$" } } } });
} catch (e) {
  refused = { status: e.status, code: e.code, param: e.param, message: e.message };
}
const logprobs = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0,
  logprobs: true, top_logprobs: 2 });

process.stdout.write(JSON.stringify({
  json: { text: json.choices[0].message.content, finish: json.choices[0].finish_reason },
  forced: forced.choices[0].message.content,
  schemaChat: JSON.parse(schemaChat.choices[0].message.content),
  schemaResponse: { parsed: JSON.parse(schemaResponse.output_text), format: schemaResponse.text.format.type },
  refused,
  logprobs: {
    text: logprobs.choices[0].message.content,
    tokens: logprobs.choices[0].logprobs.content.map((t) => t.token),
    logprobs: logprobs.choices[0].logprobs.content.map((t) => t.logprob),
    alternatives: logprobs.choices[0].logprobs.content.map((t) => t.top_logprobs.length),
    completionTokens: logprobs.usage.completion_tokens,
  },
}));
