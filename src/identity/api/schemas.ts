/** JSON schema pieces shared by identity's request bodies (Keystone's limits). */

export const name64 = { type: 'string', minLength: 1, maxLength: 64 } as const;
export const name255 = { type: 'string', minLength: 1, maxLength: 255 } as const;
export const description = { type: ['string', 'null'] } as const;
export const enabled = { type: 'boolean' } as const;
export const id64 = { type: ['string', 'null'], minLength: 1, maxLength: 64 } as const;
export const tag = { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^,/]*$' } as const;
export const tags = { type: 'array', items: tag, maxItems: 80, uniqueItems: true } as const;
export const options = { type: 'object' } as const;

/** A body `{ "<key>": { ...properties } }` whose entity keeps unknown attributes as extras. */
export function entityBody(key: string, properties: Record<string, unknown>, required: string[] = []): Record<string, unknown> {
  return {
    type: 'object',
    required: [key],
    properties: { [key]: { type: 'object', properties, required, additionalProperties: true } },
  };
}
