// Values for the CEL evaluator (@bufbuild/cel) as the API server, Flux or a webhook's
// matchConditions hand them over: JSON objects become maps, and an integral number becomes
// a CEL int where the structural schema says integer, or, without a schema (null),
// wherever it is integral. A field the schema does not declare keeps its number a double.
export function toCel(value, schema = null) {
  const sub = (s) => (schema === null ? null : s ?? {});
  if (Array.isArray(value)) return value.map((item) => toCel(item, sub(schema?.items)));
  if (value && typeof value === "object") {
    return new Map(Object.entries(value).map(([k, v]) =>
      [k, toCel(v, sub(schema?.properties?.[k] ?? schema?.additionalProperties))]));
  }
  if (typeof value === "number" && Number.isInteger(value) && (schema === null || schema.type === "integer")) {
    return BigInt(value);
  }
  return value;
}

// Whether two JSON values are the same, key order included.
export const sameJson = (a, b) => JSON.stringify(a) === JSON.stringify(b);
