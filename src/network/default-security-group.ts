import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../core/db/database.js';
import { isoNow, newStandardColumns } from './common.js';
import type { NetworkSchema } from './db/schema.js';
import { newRuleRow } from './security-group-rules.js';

/**
 * The project's `default` security group, created on first need (the first
 * port, the first security group list, ...) with Neutron's default rules:
 * all egress over IPv4 and IPv6, and ingress only from members of the group.
 * Concurrent first requests create it once: `default_security_group` is keyed
 * by project, and the loser reads the winner's group.
 */
export async function ensureDefaultSecurityGroup(db: Kysely<NetworkSchema>, projectId: string): Promise<string> {
  const existing = await db.selectFrom('default_security_group').select('security_group_id').where('project_id', '=', projectId).executeTakeFirst();
  if (existing) return existing.security_group_id;
  const now = isoNow();
  const group = { ...newStandardColumns(projectId, { name: 'default', description: 'Default security group' }, now), stateful: 1 };
  const id = group.id;
  try {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('security_group').values(group).execute();
      await trx.insertInto('default_security_group').values({ project_id: projectId, security_group_id: id }).execute();
      const rule = (direction: string, ethertype: string, remoteGroupId: string | null) => newRuleRow(id, projectId, { direction, ethertype, remote_group_id: remoteGroupId }, now);
      await trx
        .insertInto('security_group_rule')
        .values([rule('egress', 'IPv4', null), rule('egress', 'IPv6', null), rule('ingress', 'IPv4', id), rule('ingress', 'IPv6', id)])
        .execute();
    });
    return id;
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const winner = await db.selectFrom('default_security_group').select('security_group_id').where('project_id', '=', projectId).executeTakeFirstOrThrow();
    return winner.security_group_id;
  }
}
