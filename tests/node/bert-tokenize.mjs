// Reference WordPiece tokenization by @lenml/tokenizers (a port of Hugging Face's tokenizers: BertNormalizer,
// BertPreTokenizer, WordPiece, [CLS]/[SEP] template). Args: tokenizer.json, tokenizer_config.json, texts.json.
import { readFileSync } from "node:fs";
import { TokenizerLoader } from "@lenml/tokenizers";

const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(process.argv[2], "utf8")),
  tokenizerConfig: JSON.parse(readFileSync(process.argv[3], "utf8")),
});
const texts = JSON.parse(readFileSync(process.argv[4], "utf8"));
process.stdout.write(JSON.stringify(texts.map((t) => tokenizer.encode(t))));
