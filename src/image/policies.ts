import type { RuleDefault } from '../core/policy/index.js';

/**
 * The image service's default policy: Glance's current defaults (secure
 * RBAC). Targets carry the image's `project_id` (its owner), its
 * `visibility`, and `member_id` (the caller's project when the caller is a
 * member of the image). Operators override any rule in `policy.yaml`
 * (policy_files.image).
 */
const ADMIN = 'role:admin';
const PROJECT_MEMBER = '(role:member and project_id:%(project_id)s)';
const PROJECT_READER = '(role:reader and project_id:%(project_id)s)';
const ADMIN_OR_PROJECT_MEMBER = `${ADMIN} or ${PROJECT_MEMBER}`;
const ADMIN_OR_PROJECT_READER = `${ADMIN} or ${PROJECT_READER}`;
const readable = (role: string): string =>
  `${ADMIN} or (role:${role} and (project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s))`;
const ADMIN_OR_SHARED_MEMBER = `${ADMIN} or (role:member and project_id:%(member_id)s)`;
const ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER = `${ADMIN} or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s))`;

const rules: Record<string, string> = {
  context_is_admin: ADMIN,
  default: '',

  // images
  add_image: ADMIN_OR_PROJECT_MEMBER,
  delete_image: ADMIN_OR_PROJECT_MEMBER,
  get_image: readable('reader'),
  get_images: ADMIN_OR_PROJECT_READER,
  modify_image: ADMIN_OR_PROJECT_MEMBER,
  publicize_image: ADMIN,
  communitize_image: ADMIN_OR_PROJECT_MEMBER,
  deactivate: ADMIN_OR_PROJECT_MEMBER,
  reactivate: ADMIN_OR_PROJECT_MEMBER,
  copy_image: ADMIN,

  // image data
  download_image: readable('member'),
  upload_image: ADMIN_OR_PROJECT_MEMBER,
  stage_image: ADMIN_OR_PROJECT_MEMBER,
  import_image: ADMIN_OR_PROJECT_MEMBER,

  // locations
  get_image_location: ADMIN_OR_PROJECT_READER,
  set_image_location: ADMIN_OR_PROJECT_MEMBER,
  delete_image_location: ADMIN_OR_PROJECT_MEMBER,

  // members
  add_member: ADMIN_OR_PROJECT_MEMBER,
  delete_member: ADMIN_OR_PROJECT_MEMBER,
  get_member: ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER,
  get_members: ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER,
  modify_member: ADMIN_OR_SHARED_MEMBER,

  // tasks and service information
  get_task: ADMIN,
  get_tasks: ADMIN,
  add_task: ADMIN,
  modify_task: ADMIN,
  tasks_api_access: ADMIN,
  stores_info_detail: ADMIN,

  // metadata definitions: everyone reads, admins write
  metadef_default: '',
  metadef_admin: ADMIN,
  get_metadef_namespace: 'rule:metadef_default',
  get_metadef_namespaces: 'rule:metadef_default',
  modify_metadef_namespace: 'rule:metadef_admin',
  add_metadef_namespace: 'rule:metadef_admin',
  delete_metadef_namespace: 'rule:metadef_admin',
  get_metadef_object: 'rule:metadef_default',
  get_metadef_objects: 'rule:metadef_default',
  modify_metadef_object: 'rule:metadef_admin',
  add_metadef_object: 'rule:metadef_admin',
  delete_metadef_object: 'rule:metadef_admin',
  list_metadef_resource_types: 'rule:metadef_default',
  get_metadef_resource_type: 'rule:metadef_default',
  add_metadef_resource_type_association: 'rule:metadef_admin',
  remove_metadef_resource_type_association: 'rule:metadef_admin',
  get_metadef_property: 'rule:metadef_default',
  get_metadef_properties: 'rule:metadef_default',
  modify_metadef_property: 'rule:metadef_admin',
  add_metadef_property: 'rule:metadef_admin',
  remove_metadef_property: 'rule:metadef_admin',
  get_metadef_tag: 'rule:metadef_default',
  get_metadef_tags: 'rule:metadef_default',
  modify_metadef_tag: 'rule:metadef_admin',
  add_metadef_tag: 'rule:metadef_admin',
  add_metadef_tags: 'rule:metadef_admin',
  delete_metadef_tag: 'rule:metadef_admin',
  delete_metadef_tags: 'rule:metadef_admin',
};

export const imagePolicyDefaults: RuleDefault[] = Object.entries(rules).map(([name, checkStr]) => ({ name, checkStr }));
