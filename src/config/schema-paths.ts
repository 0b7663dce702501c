/**
 * The config schema as JSON Schema (zod's own conversion of src/config/schema.ts, input side),
 * walked by key path: which keys exist below a node and which JSON types a value may have.
 * Used by the environment overlay (SMTP_SIDECAR_LISTEN__PORT → listen.port) and by the
 * coercion of `${env:}` / `${file:}` references in number and boolean fields.
 *
 * Does: follow object properties, record values (additionalProperties), array items and every
 *   variant of a union (oneOf / anyOf: the upstream protocols and auth types), so a key that
 *   exists in any variant is found.
 * Never: invent keys or types the schema does not have.
 * Assumes: the schema has no $ref (zod inlines this config's schemas).
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

export interface JsonSchemaNode {
  type?: string | string[];
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: boolean | JsonSchemaNode;
  items?: JsonSchemaNode;
  oneOf?: JsonSchemaNode[];
  anyOf?: JsonSchemaNode[];
  enum?: unknown[];
  const?: unknown;
  [key: string]: unknown;
}

/** zod's JSON Schema of the config (input side: keys with defaults are optional). */
export function configJsonSchema(): JsonSchemaNode {
  return z.toJSONSchema(configSchema, { io: 'input' }) as JsonSchemaNode;
}

/** The node itself or, for a union, each of its variants (recursively). */
export function variantsOf(node: JsonSchemaNode): JsonSchemaNode[] {
  const union = node.oneOf ?? node.anyOf;
  return union === undefined ? [node] : union.flatMap(variantsOf);
}

/** The schema nodes a value at `key` below `nodes` may match (several when unions are involved). */
export function childNodes(nodes: readonly JsonSchemaNode[], key: string | number): JsonSchemaNode[] {
  const out: JsonSchemaNode[] = [];
  for (const node of nodes.flatMap(variantsOf)) {
    if (typeof key === 'number') {
      if (node.items !== undefined) out.push(node.items);
      continue;
    }
    const property = node.properties?.[key];
    if (property !== undefined) out.push(property);
    else if (typeof node.additionalProperties === 'object') out.push(node.additionalProperties);
  }
  return out;
}

/** The schema nodes for a whole key path from the root. */
export function nodesAt(root: JsonSchemaNode, path: readonly (string | number)[]): JsonSchemaNode[] {
  let nodes = [root];
  for (const key of path) nodes = childNodes(nodes, key);
  return nodes;
}

/** Every JSON type the nodes allow ("integer" counts as "number"). */
export function typesOf(nodes: readonly JsonSchemaNode[]): Set<string> {
  const types = new Set<string>();
  for (const node of nodes.flatMap(variantsOf)) {
    const type = node.type ?? (node.const !== undefined ? typeof node.const : undefined);
    for (const t of Array.isArray(type) ? type : type === undefined ? [] : [type]) types.add(t === 'integer' ? 'number' : t);
  }
  return types;
}
