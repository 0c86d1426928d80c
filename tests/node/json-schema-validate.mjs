// Ajv (an independent JSON Schema validator, draft-07 keywords and $defs) checks generated texts against their
// schemas. Argument: a JSON file [{"schema": …, "text": "…"}]. Prints [{"valid": bool, "errors": […]}]; a text that
// is not JSON is invalid with the parse error.
import { readFileSync } from "node:fs";
import Ajv from "ajv";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const ajv = new Ajv({ strict: false, allErrors: true });
const results = cases.map(({ schema, text }) => {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { valid: false, errors: [String(e.message)] };
  }
  const validate = ajv.compile(schema);
  const valid = validate(value);
  return { valid, errors: valid ? [] : validate.errors.map((e) => `${e.instancePath} ${e.message}`) };
});
process.stdout.write(JSON.stringify(results));
