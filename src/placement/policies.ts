import type { RuleDefault } from '../core/policy/index.js';

/**
 * The placement service's default policy, as placement's current defaults:
 * everything for administrators and the `service` role (the service users
 * nova and neutron log in with), and project usages also for the project's
 * readers. Operators override rules in `policy.yaml` (policy_files.placement).
 */
const ADMIN_OR_SERVICE = 'rule:admin_or_service_api';

const base: Record<string, string> = {
  context_is_admin: 'role:admin',
  admin_api: 'role:admin',
  service_api: 'role:service',
  admin_or_service_api: 'role:admin or role:service',
  project_reader_api: 'role:reader and project_id:%(project_id)s',
  admin_or_project_reader_or_service_api: 'role:admin or rule:project_reader_api or role:service',
};

const guarded: Record<string, string> = {
  'placement:resource_providers:list': ADMIN_OR_SERVICE,
  'placement:resource_providers:create': ADMIN_OR_SERVICE,
  'placement:resource_providers:show': ADMIN_OR_SERVICE,
  'placement:resource_providers:update': ADMIN_OR_SERVICE,
  'placement:resource_providers:delete': ADMIN_OR_SERVICE,
  'placement:resource_providers:inventories:list': ADMIN_OR_SERVICE,
  'placement:resource_providers:inventories:create': ADMIN_OR_SERVICE,
  'placement:resource_providers:inventories:show': ADMIN_OR_SERVICE,
  'placement:resource_providers:inventories:update': ADMIN_OR_SERVICE,
  'placement:resource_providers:inventories:delete': ADMIN_OR_SERVICE,
  'placement:resource_providers:aggregates:list': ADMIN_OR_SERVICE,
  'placement:resource_providers:aggregates:update': ADMIN_OR_SERVICE,
  'placement:resource_providers:traits:list': ADMIN_OR_SERVICE,
  'placement:resource_providers:traits:update': ADMIN_OR_SERVICE,
  'placement:resource_providers:traits:delete': ADMIN_OR_SERVICE,
  'placement:resource_providers:allocations:list': ADMIN_OR_SERVICE,
  'placement:resource_providers:usages': ADMIN_OR_SERVICE,
  'placement:resource_classes:list': ADMIN_OR_SERVICE,
  'placement:resource_classes:create': ADMIN_OR_SERVICE,
  'placement:resource_classes:show': ADMIN_OR_SERVICE,
  'placement:resource_classes:update': ADMIN_OR_SERVICE,
  'placement:resource_classes:delete': ADMIN_OR_SERVICE,
  'placement:traits:list': ADMIN_OR_SERVICE,
  'placement:traits:show': ADMIN_OR_SERVICE,
  'placement:traits:update': ADMIN_OR_SERVICE,
  'placement:traits:delete': ADMIN_OR_SERVICE,
  'placement:allocations:list': ADMIN_OR_SERVICE,
  'placement:allocations:manage': ADMIN_OR_SERVICE,
  'placement:allocations:update': ADMIN_OR_SERVICE,
  'placement:allocations:delete': ADMIN_OR_SERVICE,
  'placement:allocation_candidates:list': ADMIN_OR_SERVICE,
  'placement:usages': 'rule:admin_or_project_reader_or_service_api',
  'placement:reshaper:reshape': 'rule:service_api',
};

/** Every rule with its default text. */
export const placementPolicyDefaults: RuleDefault[] = Object.entries({ ...base, ...guarded }).map(([name, checkStr]) => ({ name, checkStr }));
