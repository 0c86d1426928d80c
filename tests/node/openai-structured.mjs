// The official OpenAI client asking for JSON (response_format json_object) through the proxy with an adapter, and
// steering a token with logit_bias. Environment: OPENAI_BASE_URL, OPENAI_API_KEY, LOPA_MODEL, DOT_TOKEN (the
// model's token id of "."). Prints a JSON summary.
import OpenAI from "openai";

const client = new OpenAI();
const model = process.env.LOPA_MODEL;
const messages = [{ role: "user", content: "Tom had a red kite" }];
const json = await client.chat.completions.create({ model, messages, max_tokens: 40, temperature: 0,
  response_format: { type: "json_object" } });
const forced = await client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 0,
  logit_bias: { [process.env.DOT_TOKEN]: 100 } });
let schema = null;
try {
  await client.chat.completions.create({ model, messages, max_tokens: 4, response_format: { type: "json_schema",
    json_schema: { name: "s", schema: { type: "object" } } } });
} catch (e) {
  schema = { status: e.status, code: e.code, param: e.param };
}
process.stdout.write(JSON.stringify({
  json: { text: json.choices[0].message.content, finish: json.choices[0].finish_reason },
  forced: forced.choices[0].message.content,
  schema,
}));
