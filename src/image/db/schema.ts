/**
 * The image service's tables. Booleans are integers (0/1) and times ISO-8601
 * UTC strings with microseconds, as in every Stratus service, so that SQLite,
 * PostgreSQL and MySQL read back alike and times sort as text.
 */
export interface ImageSchema {
  image: ImageRow;
  image_property: { image_id: string; name: string; value: string };
  image_tag: { image_id: string; value: string };
  image_member: MemberRow;
  image_location: LocationRow;
  image_task: TaskRow;
  metadef_namespace: MetadefNamespaceRow;
  metadef_object: MetadefObjectRow;
  metadef_property: MetadefPropertyRow;
  metadef_tag: MetadefTagRow;
  metadef_resource_type: MetadefResourceTypeRow;
  metadef_namespace_resource_type: MetadefAssociationRow;
}

export interface ImageRow {
  id: string;
  name: string | null;
  disk_format: string | null;
  container_format: string | null;
  /** Bytes of image data; null until data is stored (or staged). */
  size: number | null;
  virtual_size: number | null;
  status: string;
  visibility: string;
  /** MD5 of the data, hex (Glance's legacy `checksum`). */
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  min_disk: number;
  min_ram: number;
  protected: number;
  os_hidden: number;
  owner: string | null;
  created_at: string;
  updated_at: string;
  /** Set when deleted; deleted rows keep their id so that it is never reused. */
  deleted_at: string | null;
  /** The worker that holds the image while it is `saving` or `importing` (for recovery after a crash). */
  worker: string | null;
}

export interface MemberRow {
  image_id: string;
  member: string;
  /** `pending`, `accepted` or `rejected`. */
  status: string;
  created_at: string;
  updated_at: string;
}

export interface LocationRow {
  id: string;
  image_id: string;
  /** The store id (`file`, ...), or `http` for a read-only web location. */
  store: string;
  url: string;
  /** JSON object. */
  metadata: string;
  created_at: string;
}

export interface TaskRow {
  id: string;
  image_id: string;
  type: string;
  /** `pending`, `processing`, `success` or `failure`. */
  status: string;
  /** JSON. */
  input: string;
  result: string | null;
  message: string;
  owner: string;
  user_id: string;
  request_id: string;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
}

/** A metadata definition namespace (Glance's metadefs). Its name is unique across the cloud. */
export interface MetadefNamespaceRow {
  /** Internal id (UUID); the API names a namespace by `namespace`, which can be renamed. */
  id: string;
  namespace: string;
  display_name: string | null;
  description: string | null;
  /** `public` or `private`. */
  visibility: string;
  /** 1: neither the namespace nor anything in it can be deleted. */
  protected: number;
  /** The owning project (`admin` for the definitions seeded at install). */
  owner: string;
  created_at: string;
  updated_at: string;
}

export interface MetadefObjectRow {
  namespace_id: string;
  name: string;
  description: string | null;
  /** JSON array of property names. */
  required: string;
  /** JSON object: property name to property definition. */
  properties: string;
  created_at: string;
  updated_at: string;
}

export interface MetadefPropertyRow {
  namespace_id: string;
  name: string;
  /** JSON object: the property definition (title, type, enum, ...) without its name. */
  schema: string;
  created_at: string;
  updated_at: string;
}

export interface MetadefTagRow {
  namespace_id: string;
  name: string;
  created_at: string;
  updated_at: string;
}

/** A kind of resource that namespaces apply to (`OS::Glance::Image`, `OS::Nova::Flavor`, ...). */
export interface MetadefResourceTypeRow {
  name: string;
  /** 1 for the seeded (system) types. */
  protected: number;
  created_at: string;
  updated_at: string;
}

/** Ties a namespace to a resource type, with the prefix its properties take on that type. */
export interface MetadefAssociationRow {
  namespace_id: string;
  resource_type: string;
  prefix: string | null;
  properties_target: string | null;
  created_at: string;
  updated_at: string;
}
