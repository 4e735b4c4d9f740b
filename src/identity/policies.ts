import type { RuleDefault } from '../core/policy/index.js';

/**
 * Identity's default policy: Keystone's current defaults. `admin` is the
 * cloud administrator in any scope; `reader` on the system sees everything;
 * a domain reader sees their domain; users see and manage their own things.
 * Operators override any rule in `policy.yaml` (policy_files.identity).
 */
const ADMIN = 'rule:admin_required';
const SYSTEM_READER = '(role:reader and system_scope:all)';
const ADMIN_OR_SYSTEM_READER = `${ADMIN} or ${SYSTEM_READER}`;
const domainReader = (path: string): string => `(role:reader and domain_id:%(${path})s)`;
const adminSystemOrDomainReader = (path: string): string => `${ADMIN_OR_SYSTEM_READER} or ${domainReader(path)}`;

const rules: Record<string, string> = {
  admin_required: 'role:admin or is_admin:True',
  service_role: 'role:service',
  service_or_admin: 'rule:admin_required or rule:service_role',
  owner: 'user_id:%(user_id)s',
  admin_or_owner: 'rule:admin_required or rule:owner',
  token_subject: 'user_id:%(target.token.user_id)s',
  service_admin_or_token_subject: 'rule:service_or_admin or rule:token_subject',

  // tokens and the auth API
  'identity:validate_token': `rule:service_admin_or_token_subject or ${SYSTEM_READER}`,
  'identity:check_token': `${ADMIN_OR_SYSTEM_READER} or rule:token_subject`,
  'identity:revoke_token': `${ADMIN} or rule:token_subject`,
  'identity:get_auth_catalog': '',
  'identity:get_auth_projects': '',
  'identity:get_auth_domains': '',
  'identity:get_auth_system': '',

  // domains
  'identity:get_domain': `${ADMIN_OR_SYSTEM_READER} or token.domain.id:%(target.domain.id)s or token.project.domain.id:%(target.domain.id)s`,
  'identity:list_domains': ADMIN_OR_SYSTEM_READER,
  'identity:create_domain': ADMIN,
  'identity:update_domain': ADMIN,
  'identity:delete_domain': ADMIN,

  // projects
  'identity:get_project': `${adminSystemOrDomainReader('target.project.domain_id')} or project_id:%(target.project.id)s`,
  'identity:list_projects': adminSystemOrDomainReader('target.domain_id'),
  'identity:list_user_projects': `${adminSystemOrDomainReader('target.user.domain_id')} or user_id:%(target.user.id)s`,
  'identity:create_project': ADMIN,
  'identity:update_project': ADMIN,
  'identity:delete_project': ADMIN,
  'identity:list_project_tags': `${adminSystemOrDomainReader('target.project.domain_id')} or project_id:%(target.project.id)s`,
  'identity:get_project_tag': `${adminSystemOrDomainReader('target.project.domain_id')} or project_id:%(target.project.id)s`,
  'identity:update_project_tags': ADMIN,
  'identity:create_project_tag': ADMIN,
  'identity:delete_project_tags': ADMIN,
  'identity:delete_project_tag': ADMIN,

  // users
  'identity:get_user': `${adminSystemOrDomainReader('target.user.domain_id')} or user_id:%(target.user.id)s`,
  'identity:list_users': adminSystemOrDomainReader('target.domain_id'),
  'identity:create_user': ADMIN,
  'identity:update_user': ADMIN,
  'identity:delete_user': ADMIN,
  'identity:change_password': `${ADMIN} or user_id:%(target.user.id)s`,

  // groups
  'identity:get_group': adminSystemOrDomainReader('target.group.domain_id'),
  'identity:list_groups': adminSystemOrDomainReader('target.group.domain_id'),
  'identity:list_groups_for_user': `${adminSystemOrDomainReader('target.user.domain_id')} or user_id:%(user_id)s`,
  'identity:create_group': ADMIN,
  'identity:update_group': ADMIN,
  'identity:delete_group': ADMIN,
  'identity:list_users_in_group': adminSystemOrDomainReader('target.group.domain_id'),
  'identity:remove_user_from_group': ADMIN,
  'identity:check_user_in_group': adminSystemOrDomainReader('target.group.domain_id'),
  'identity:add_user_to_group': ADMIN,

  // roles, implied roles, grants, assignments
  'identity:get_role': ADMIN_OR_SYSTEM_READER,
  'identity:list_roles': `${ADMIN_OR_SYSTEM_READER} or (role:reader and domain_id:%(target.domain_id)s)`,
  'identity:create_role': ADMIN,
  'identity:update_role': ADMIN,
  'identity:delete_role': ADMIN,
  'identity:get_domain_role': ADMIN_OR_SYSTEM_READER,
  'identity:list_domain_roles': ADMIN_OR_SYSTEM_READER,
  'identity:create_domain_role': ADMIN,
  'identity:update_domain_role': ADMIN,
  'identity:delete_domain_role': ADMIN,
  'identity:get_implied_role': ADMIN_OR_SYSTEM_READER,
  'identity:list_implied_roles': ADMIN_OR_SYSTEM_READER,
  'identity:list_role_inference_rules': ADMIN_OR_SYSTEM_READER,
  'identity:check_implied_role': ADMIN_OR_SYSTEM_READER,
  'identity:create_implied_role': ADMIN,
  'identity:delete_implied_role': ADMIN,
  'identity:check_grant': ADMIN_OR_SYSTEM_READER,
  'identity:list_grants': ADMIN_OR_SYSTEM_READER,
  'identity:create_grant': ADMIN,
  'identity:revoke_grant': ADMIN,
  'identity:check_system_grant_for_user': ADMIN_OR_SYSTEM_READER,
  'identity:list_system_grants_for_user': ADMIN_OR_SYSTEM_READER,
  'identity:create_system_grant_for_user': ADMIN,
  'identity:revoke_system_grant_for_user': ADMIN,
  'identity:check_system_grant_for_group': ADMIN_OR_SYSTEM_READER,
  'identity:list_system_grants_for_group': ADMIN_OR_SYSTEM_READER,
  'identity:create_system_grant_for_group': ADMIN,
  'identity:revoke_system_grant_for_group': ADMIN,
  'identity:list_role_assignments': adminSystemOrDomainReader('target.domain_id'),
  'identity:list_role_assignments_for_tree': `${ADMIN_OR_SYSTEM_READER} or (role:reader and project_id:%(target.project.id)s)`,

  // catalog
  'identity:get_service': ADMIN_OR_SYSTEM_READER,
  'identity:list_services': ADMIN_OR_SYSTEM_READER,
  'identity:create_service': ADMIN,
  'identity:update_service': ADMIN,
  'identity:delete_service': ADMIN,
  'identity:get_endpoint': ADMIN_OR_SYSTEM_READER,
  'identity:list_endpoints': ADMIN_OR_SYSTEM_READER,
  'identity:create_endpoint': ADMIN,
  'identity:update_endpoint': ADMIN,
  'identity:delete_endpoint': ADMIN,
  'identity:get_region': '',
  'identity:list_regions': '',
  'identity:create_region': ADMIN,
  'identity:update_region': ADMIN,
  'identity:delete_region': ADMIN,
  'identity:endpoint_groups': ADMIN_OR_SYSTEM_READER,
  'identity:manage_endpoint_groups': ADMIN,
  'identity:project_endpoints': ADMIN_OR_SYSTEM_READER,
  'identity:manage_project_endpoints': ADMIN,

  // credentials
  'identity:get_credential': `${ADMIN_OR_SYSTEM_READER} or user_id:%(target.credential.user_id)s`,
  'identity:list_credentials': `${ADMIN_OR_SYSTEM_READER} or user_id:%(target.credential.user_id)s`,
  'identity:create_credential': `${ADMIN} or user_id:%(target.credential.user_id)s`,
  'identity:update_credential': `${ADMIN} or user_id:%(target.credential.user_id)s`,
  'identity:delete_credential': `${ADMIN} or user_id:%(target.credential.user_id)s`,
  'identity:ec2_get_credential': `${ADMIN_OR_SYSTEM_READER} or (rule:owner and user_id:%(target.credential.user_id)s)`,
  'identity:ec2_list_credentials': `${ADMIN_OR_SYSTEM_READER} or rule:owner`,
  'identity:ec2_create_credential': `${ADMIN} or rule:owner`,
  'identity:ec2_delete_credential': `${ADMIN} or (rule:owner and user_id:%(target.credential.user_id)s)`,
  // S3 and EC2 signature checks: only services (and admins) may turn a signed request into a token
  'identity:s3tokens_validate': 'rule:service_or_admin',
  'identity:ec2tokens_validate': 'rule:service_or_admin',

  // application credentials: only the user makes their own
  'identity:get_application_credential': `${ADMIN_OR_SYSTEM_READER} or rule:owner`,
  'identity:list_application_credentials': `${ADMIN_OR_SYSTEM_READER} or rule:owner`,
  'identity:create_application_credential': 'user_id:%(user_id)s',
  'identity:delete_application_credential': `${ADMIN} or rule:owner`,

  // unified limits: anyone with a token reads them (a limit only within its
  // project or domain, and the list is filtered to match); only admins write
  'identity:get_limit_model': '',
  'identity:get_limit': `${ADMIN_OR_SYSTEM_READER} or (domain_id:%(target.limit.domain.id)s or domain_id:%(target.limit.project.domain_id)s) or (project_id:%(target.limit.project_id)s and not None:%(target.limit.project_id)s)`,
  'identity:list_limits': '',
  'identity:create_limits': ADMIN,
  'identity:update_limit': ADMIN,
  'identity:delete_limit': ADMIN,
  'identity:get_registered_limit': '',
  'identity:list_registered_limits': '',
  'identity:create_registered_limits': ADMIN,
  'identity:update_registered_limit': ADMIN,
  'identity:delete_registered_limit': ADMIN,

  // the rest of the admin API
  'identity:get_policy': ADMIN_OR_SYSTEM_READER,
  'identity:list_policies': ADMIN_OR_SYSTEM_READER,
  'identity:create_policy': ADMIN,
  'identity:update_policy': ADMIN,
  'identity:delete_policy': ADMIN,
  'identity:get_domain_config': ADMIN_OR_SYSTEM_READER,
  'identity:get_domain_config_default': ADMIN_OR_SYSTEM_READER,
  'identity:create_domain_config': ADMIN,
  'identity:update_domain_config': ADMIN,
  'identity:delete_domain_config': ADMIN,
  'identity:get_consumer': ADMIN_OR_SYSTEM_READER,
  'identity:list_consumers': ADMIN_OR_SYSTEM_READER,
  'identity:create_consumer': ADMIN,
  'identity:update_consumer': ADMIN,
  'identity:delete_consumer': ADMIN,
};

export const identityPolicyDefaults: RuleDefault[] = Object.entries(rules).map(([name, checkStr]) => ({ name, checkStr }));
