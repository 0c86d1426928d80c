// The official OpenAI client's Files API against the proxy: files.create (a fine-tuning JSONL), list, retrieve,
// content, a file that is not fine-tuning data, another purpose, another tenant's view, delete. Environment:
// OPENAI_BASE_URL, OPENAI_API_KEY, OTHER_API_KEY (a second tenant), GOOD_FILE, BAD_FILE. Prints a JSON summary.
import fs from "node:fs";
import OpenAI from "openai";

const client = new OpenAI();
const other = new OpenAI({ apiKey: process.env.OTHER_API_KEY });
const failure = async (call) => {
  try {
    await call();
    return null;
  } catch (e) {
    return { status: e.status, code: e.code, param: e.param, message: e.message };
  }
};

const created = await client.files.create({ file: fs.createReadStream(process.env.GOOD_FILE), purpose: "fine-tune" });
const listed = [];
for await (const file of client.files.list({ purpose: "fine-tune" })) listed.push(file.id);
const retrieved = await client.files.retrieve(created.id);
const content = await (await client.files.content(created.id)).text();
const bad = await failure(() => client.files.create({ file: fs.createReadStream(process.env.BAD_FILE),
  purpose: "fine-tune" }));
const purpose = await failure(() => client.files.create({ file: fs.createReadStream(process.env.GOOD_FILE),
  purpose: "assistants" }));
const otherRetrieve = await failure(() => other.files.retrieve(created.id));
const otherDelete = await failure(() => other.files.delete(created.id));
const otherListed = [];
for await (const file of other.files.list()) otherListed.push(file.id);
const deleted = await client.files.delete(created.id);
const afterDelete = await failure(() => client.files.retrieve(created.id));

process.stdout.write(JSON.stringify({
  created, listed, retrieved, contentLength: Buffer.byteLength(content), bad, purpose, otherRetrieve, otherDelete,
  otherListed, deleted, afterDelete,
}));
