/**
 * The standard resource classes (os-resource-classes). The order is part of
 * the contract: a class's id is its index here, as in placement's database,
 * so new classes only ever go at the end. Custom classes (`CUSTOM_*`) get
 * ids from {@link MIN_CUSTOM_RESOURCE_CLASS_ID}.
 */
export const STANDARD_RESOURCE_CLASSES: readonly string[] = [
  'VCPU',
  'MEMORY_MB',
  'DISK_GB',
  'PCI_DEVICE',
  'SRIOV_NET_VF',
  'NUMA_SOCKET',
  'NUMA_CORE',
  'NUMA_THREAD',
  'NUMA_MEMORY_MB',
  'IPV4_ADDRESS',
  'VGPU',
  'VGPU_DISPLAY_HEAD',
  'NET_BW_EGR_KILOBIT_PER_SEC',
  'NET_BW_IGR_KILOBIT_PER_SEC',
  'PCPU',
  'MEM_ENCRYPTION_CONTEXT',
  'FPGA',
  'PGPU',
  'NET_PACKET_RATE_KILOPACKET_PER_SEC',
  'NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC',
  'NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC',
];

/** The first id of a custom resource class. */
export const MIN_CUSTOM_RESOURCE_CLASS_ID = 10000;
