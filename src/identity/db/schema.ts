/**
 * Identity's tables, as the typed query layer sees them. Booleans are stored
 * as integers (0/1) so that SQLite, PostgreSQL and MySQL read back alike;
 * times are ISO-8601 UTC strings with microseconds, which sort as text.
 * `extra` columns hold a JSON object of the attributes Keystone lets callers
 * add to an entity (e.g. a user's `email`).
 */
export interface IdentitySchema {
  project: ProjectRow;
  project_tag: { project_id: string; name: string };
  user: UserRow;
  password_history: { id: string; user_id: string; hash: string; created_at: string };
  group: { id: string; name: string; domain_id: string; description: string | null; extra: string };
  user_group_membership: { user_id: string; group_id: string };
  role: RoleRow;
  implied_role: { prior_role_id: string; implied_role_id: string };
  assignment: AssignmentRow;
  service: { id: string; type: string; enabled: number; extra: string };
  endpoint: EndpointRow;
  region: { id: string; description: string; parent_region_id: string | null; extra: string };
  credential: CredentialRow;
  application_credential: ApplicationCredentialRow;
  application_credential_role: { application_credential_id: string; role_id: string };
  revocation_event: RevocationEventRow;
  policy: { id: string; type: string; blob: string; extra: string };
  endpoint_group: { id: string; name: string; description: string; filters: string };
  project_endpoint: { endpoint_id: string; project_id: string };
  project_endpoint_group: { endpoint_group_id: string; project_id: string };
  domain_config: { domain_id: string; group: string; option: string; value: string; sensitive: number };
  consumer: { id: string; description: string; secret_hash: string; extra: string };
  fernet_key: { id: number; key: string; created_at: string };
  bootstrap: { name: string; value: string };
  registered_limit: RegisteredLimitRow;
  limit: LimitRow;
}

/** A domain is a project row with `is_domain = 1` and `domain_id = ROOT_DOMAIN`. */
export const ROOT_DOMAIN = '<<keystone.domain.root>>';
/** `role.domain_id` of a global role (NULL would defeat the unique constraint). */
export const GLOBAL_ROLE = '<<null>>';

export interface ProjectRow {
  id: string;
  name: string;
  description: string;
  enabled: number;
  domain_id: string;
  parent_id: string | null;
  is_domain: number;
  extra: string;
  created_at: string;
}

export interface UserRow {
  id: string;
  name: string;
  domain_id: string;
  enabled: number;
  default_project_id: string | null;
  password_hash: string | null;
  password_created_at: string | null;
  password_expires_at: string | null;
  extra: string;
  options: string;
  created_at: string;
  last_active_at: string | null;
  failed_auth_count: number;
  failed_auth_at: string | null;
}

export interface RoleRow {
  id: string;
  name: string;
  domain_id: string;
  description: string | null;
  options: string;
  extra: string;
}

/** `type`: UserProject, GroupProject, UserDomain, GroupDomain, UserSystem, GroupSystem. */
export interface AssignmentRow {
  type: string;
  actor_id: string;
  target_id: string;
  role_id: string;
  inherited: number;
}

export interface EndpointRow {
  id: string;
  service_id: string;
  interface: string;
  url: string;
  region_id: string | null;
  enabled: number;
  extra: string;
}

export interface CredentialRow {
  id: string;
  user_id: string;
  project_id: string | null;
  type: string;
  blob: string;
  key_hash: string;
  extra: string;
}

export interface ApplicationCredentialRow {
  id: string;
  name: string;
  secret_hash: string;
  description: string | null;
  user_id: string;
  project_id: string | null;
  system: string | null;
  expires_at: string | null;
  unrestricted: number;
  created_at: string;
}

/** Any token whose fields all match a non-null field here, issued at or before `issued_before`, is revoked. */
export interface RevocationEventRow {
  id: string;
  domain_id: string | null;
  project_id: string | null;
  user_id: string | null;
  role_id: string | null;
  audit_id: string | null;
  audit_chain_id: string | null;
  issued_before: string;
  expires_at: string | null;
  revoked_at: string;
}

/** A default limit of a resource of a service (in one region, or everywhere when `region_id` is null). */
export interface RegisteredLimitRow {
  id: string;
  service_id: string;
  region_id: string | null;
  resource_name: string;
  default_limit: number;
  description: string | null;
  created_at: string;
}

/**
 * A project's (or domain's) limit that overrides a registered limit; exactly
 * one of `project_id` and `domain_id` is set. Its service, region and
 * resource are those of its registered limit.
 */
export interface LimitRow {
  id: string;
  registered_limit_id: string;
  project_id: string | null;
  domain_id: string | null;
  resource_limit: number;
  description: string | null;
  created_at: string;
}
