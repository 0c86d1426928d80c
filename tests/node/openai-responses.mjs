// The official OpenAI client's Responses API (responses.create, responses.stream), unmodified, against the proxy,
// beside the same request through chat completions. Environment: OPENAI_BASE_URL, OPENAI_API_KEY, LOPA_MODEL.
// Prints a JSON summary.
import OpenAI from "openai";

const client = new OpenAI();
const model = process.env.LOPA_MODEL;
const input = "Tom had a red kite";
const settings = { model, max_output_tokens: 12, temperature: 0 };
const chat = await client.chat.completions.create({ model, messages: [{ role: "user", content: input }], max_tokens: 12,
  temperature: 0 });
const created = await client.responses.create({ ...settings, input, metadata: { run: "bridge" }, store: false });
const items = await client.responses.create({ ...settings,
  input: [{ type: "message", role: "user", content: [{ type: "input_text", text: input }] }] });
const stream = client.responses.stream({ ...settings, input });
const types = [];
let streamed = "";
for await (const event of stream) {
  if (types[types.length - 1] !== event.type) types.push(event.type);
  if (event.type === "response.output_text.delta") streamed += event.delta;
}
const final = await stream.finalResponse();
let refused = null;
try { await client.responses.create({ ...settings, input, previous_response_id: "resp_0123" }); }
catch (e) { refused = { status: e.status, code: e.code, param: e.param }; }
process.stdout.write(JSON.stringify({
  chat: { text: chat.choices[0].message.content, usage: chat.usage },
  created: { id: created.id, object: created.object, status: created.status, text: created.output_text,
    usage: created.usage, metadata: created.metadata, model: created.model },
  items: items.output_text,
  streamed: { text: streamed, types, final: final.output_text, status: final.status, usage: final.usage },
  refused,
}));
