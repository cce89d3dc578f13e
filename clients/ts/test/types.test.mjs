// src/types.ts is what scripts/gen-types.mjs makes from the live API's OpenAPI schema (when
// ENCORE_API_URL is set), and the client's types hold the documented event fields.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

import { generateTypes, loadSpec, ROOTS, TYPES_FILE } from "../scripts/gen-types.mjs";

const API = process.env.ENCORE_API_URL;

test("the committed types match the live OpenAPI schema", { skip: API ? false : "ENCORE_API_URL is not set" },
  async () => {
    const generated = generateTypes(await loadSpec(API));
    const committed = await readFile(TYPES_FILE, "utf8");
    assert.equal(committed, generated, "src/types.ts is stale: run `npm run gen-types -- $ENCORE_API_URL`");
  });

test("the generator follows references and maps nullable, enum and array schemas", () => {
  const spec = { components: { schemas: {
    Event: { type: "object", required: ["type", "tags"], properties: {
      type: { $ref: "#/components/schemas/Kind" }, tags: { type: "array", items: { type: "string" } },
      n: { anyOf: [{ type: "integer" }, { type: "null" }], description: "A count." } } },
    Kind: { enum: ["a", "b"], type: "string" },
    Accepted: { type: "object", properties: {} }, ErrorResponse: { type: "object", properties: {} },
    Recommendations: { type: "object", properties: {} },
  } } };
  const text = generateTypes(spec, ROOTS);
  assert.match(text, /export interface Event \{\n {2}type: Kind;\n {2}tags: string\[\];\n {2}\/\*\* A count\. \*\/\n {2}n\?: number \| null;\n\}/);
  assert.match(text, /export type Kind = "a" \| "b";/);
});
