import type { Kysely } from 'kysely';
import { newUuid } from '../common.js';

/**
 * The resource types every cloud starts with: the ones OpenStack's own
 * metadata definitions associate namespaces with. Seeded types are protected
 * (system types). Listed in this order, Glance's image type first.
 */
export const SEEDED_RESOURCE_TYPES = ['OS::Glance::Image', 'OS::Cinder::Volume', 'OS::Nova::Flavor', 'OS::Nova::Aggregate', 'OS::Nova::Server', 'OS::Trove::Instance'] as const;

/** The one namespace Stratus ships: guest hardware choices that an image can carry. */
export const SEEDED_NAMESPACE = 'Stratus::Compute::GuestHardware';

const string = (title: string, description: string, values?: string[]): Record<string, unknown> => ({ title, description, type: 'string', ...(values ? { enum: values } : {}) });

const GUEST_HARDWARE: Record<string, Record<string, unknown>> = {
  disk_bus: string('Disk Bus', 'The bus the guest sees its disks on. virtio is the fastest; ide and sata help guests without virtio drivers.', ['virtio', 'scsi', 'sata', 'ide', 'usb']),
  cdrom_bus: string('CD-ROM Bus', 'The bus of the guest CD-ROM drive (used for ISO images and config drives).', ['ide', 'sata', 'scsi', 'usb']),
  vif_model: string('Network Interface Model', 'The model of the virtual network card. virtio is the fastest; e1000 and rtl8139 suit guests without virtio drivers.', ['virtio', 'e1000', 'e1000e', 'rtl8139', 'ne2k_pci', 'pcnet']),
  firmware_type: string('Firmware Type', 'Whether the guest boots with a legacy BIOS or with UEFI firmware.', ['bios', 'uefi']),
  machine_type: string('Machine Type', 'The emulated machine type (for example q35 or pc on x86_64, virt on aarch64).'),
  video_model: string('Video Model', 'The graphics device shown to the guest; none removes it.', ['virtio', 'vga', 'cirrus', 'qxl', 'bochs', 'none']),
  qemu_guest_agent: string('QEMU Guest Agent', 'Set to yes when the image runs the QEMU guest agent, so that the host can talk to it (quiescing file systems for snapshots, for example).', ['yes', 'no']),
};

/**
 * Inserts the seeded definitions. Run once, by migration 0002: what is here is
 * what that migration wrote, so a change to it needs a new migration. Times
 * are a microsecond apart so that the seeded order is the listed order.
 */
export async function seedMetadefs(db: Kysely<any>): Promise<void> {
  const base = Date.now();
  let tick = 0;
  const at = (): string => {
    const micros = (base % 1000) * 1000 + tick++;
    return `${new Date(base - (base % 1000)).toISOString().slice(0, 19)}.${String(micros).padStart(6, '0')}Z`;
  };
  for (const name of SEEDED_RESOURCE_TYPES) {
    const now = at();
    await db.insertInto('metadef_resource_type').values({ name, protected: 1, created_at: now, updated_at: now }).execute();
  }
  const id = newUuid();
  const now = at();
  await db
    .insertInto('metadef_namespace')
    .values({
      id,
      namespace: SEEDED_NAMESPACE,
      display_name: 'Guest Hardware',
      description: 'Virtual hardware that instances booted from an image (or from a volume made from one) get. Set these as image properties, with the hw_ prefix.',
      visibility: 'public',
      protected: 1,
      owner: 'admin',
      created_at: now,
      updated_at: now,
    })
    .execute();
  for (const [resourceType, target] of [['OS::Glance::Image', null], ['OS::Cinder::Volume', 'image']] as const) {
    await db.insertInto('metadef_namespace_resource_type').values({ namespace_id: id, resource_type: resourceType, prefix: 'hw_', properties_target: target, created_at: now, updated_at: now }).execute();
  }
  for (const [name, schema] of Object.entries(GUEST_HARDWARE)) {
    await db.insertInto('metadef_property').values({ namespace_id: id, name, schema: JSON.stringify(schema), created_at: now, updated_at: now }).execute();
  }
}
