import type { FastifyInstance } from 'fastify';
import type { ComputeService } from '../compute.js';
import { notFound } from '../errors.js';

/**
 * `/extensions`: Nova's fixed list of the v2 API extensions that v2.1
 * folded in (a compatibility document: v2.1 is versioned by
 * microversions, not extensions). Nova's list is static, whatever the
 * deployment runs; this is its part that names APIs Stratus serves, plus
 * `os-consoles`, which Nova keeps listing after removing its API.
 */
const EXTENSIONS: [name: string, alias: string, description: string][] = [
  ['AccessIPs', 'os-access-ips', 'Access IPs support.'],
  ['AdminActions', 'os-admin-actions', 'Enable admin-only server actions.'],
  ['AvailabilityZone', 'os-availability-zone', '1. Add availability_zone to the Create Server API. 2. Add availability zones describing.'],
  ['Consoles', 'os-consoles', 'Interactive Console support.'],
  ['ConsoleOutput', 'os-console-output', 'Console log output support, with tailing ability.'],
  ['CreateBackup', 'os-create-backup', 'Create a backup of a server.'],
  ['DeferredDelete', 'os-deferred-delete', 'Instance deferred delete.'],
  ['DiskConfig', 'os-disk-config', 'Disk Management Extension.'],
  ['ExtendedAvailabilityZone', 'OS-EXT-AZ', 'Extended Availability Zone support.'],
  ['ExtendedIps', 'OS-EXT-IPS', 'Adds type parameter to the ip list.'],
  ['ExtendedIpsMac', 'OS-EXT-IPS-MAC', 'Adds mac address parameter to the ip list.'],
  ['ExtendedServerAttributes', 'OS-EXT-SRV-ATTR', 'Extended Server Attributes support.'],
  ['ExtendedStatus', 'OS-EXT-STS', 'Extended Status support.'],
  ['ExtendedVolumes', 'os-extended-volumes', 'Extended Volumes support.'],
  ['FlavorAccess', 'os-flavor-access', 'Flavor access support.'],
  ['FlavorExtraData', 'OS-FLV-EXT-DATA', 'Provide additional data for flavors.'],
  ['FlavorExtraSpecs', 'os-flavor-extra-specs', 'Flavors extra specs support.'],
  ['FlavorManage', 'os-flavor-manage', 'Flavor create/delete API support.'],
  ['FlavorRxtx', 'os-flavor-rxtx', 'Support to show the rxtx status of a flavor.'],
  ['FlavorSwap', 'os-flavor-swap', 'Support to show the swap status of a flavor.'],
  ['FlavorDisabled', 'OS-FLV-DISABLED', 'Support to show the disabled status of a flavor.'],
  ['Flavors', 'flavors', 'Flavors Extension.'],
  ['FloatingIpPools', 'os-floating-ip-pools', 'Floating IPs support.'],
  ['FloatingIps', 'os-floating-ips', 'Floating IPs support.'],
  ['Hosts', 'os-hosts', 'Admin-only host administration.'],
  ['Hypervisors', 'os-hypervisors', 'Admin-only hypervisor administration.'],
  ['ImageSize', 'OS-EXT-IMG-SIZE', 'Adds image size to image listings.'],
  ['Images', 'images', 'Images Extension.'],
  ['InstanceActions', 'os-instance-actions', 'View a log of actions and events taken on an instance.'],
  ['OSInstanceUsageAuditLog', 'os-instance-usage-audit-log', 'Admin-only Task Log Monitoring.'],
  ['Keypairs', 'os-keypairs', 'Keypair Support.'],
  ['Limits', 'limits', 'Limits support.'],
  ['LockServer', 'os-lock-server', 'Enable lock/unlock server actions.'],
  ['Migrations', 'os-migrations', 'Provide data on migrations.'],
  ['Networks', 'os-networks', 'Admin-only Network Management Extension.'],
  ['TenantNetworks', 'os-tenant-networks', 'Tenant-based Network Management Extension.'],
  ['PauseServer', 'os-pause-server', 'Enable pause/unpause server actions.'],
  ['QuotaClasses', 'os-quota-class-sets', 'Quota classes management support.'],
  ['Quotas', 'os-quota-sets', 'Quotas management support.'],
  ['Rescue', 'os-rescue', 'Instance rescue mode.'],
  ['SecurityGroups', 'os-security-groups', 'Security group support.'],
  ['ServerDiagnostics', 'os-server-diagnostics', 'Allow Admins to view server diagnostics through server action.'],
  ['ServerExternalEvents', 'os-server-external-events', 'Server External Event Triggers.'],
  ['ServerGroups', 'os-server-groups', 'Server group support.'],
  ['ServerMetadata', 'server-metadata', 'Server metadata Support.'],
  ['ServerPassword', 'os-server-password', 'Server password support.'],
  ['ServerUsage', 'OS-SRV-USG', 'Adds launched_at and terminated_at on Servers.'],
  ['Servers', 'servers', 'Servers.'],
  ['Services', 'os-services', 'Services support.'],
  ['SimpleTenantUsage', 'os-simple-tenant-usage', 'Simple tenant usage extension.'],
  ['ServerStartStop', 'os-server-start-stop', 'Start/Stop instance compute API support.'],
  ['SuspendServer', 'os-suspend-server', 'Enable suspend/resume server actions.'],
  ['UsedLimits', 'os-used-limits', 'Provide data on limited resources that are being used.'],
  ['Versions', 'versions', 'API Version information.'],
];

function view(e: [string, string, string]): Record<string, unknown> {
  const [name, alias, description] = e;
  return { name, alias, description, namespace: `http://docs.openstack.org/compute/ext/fake_xml`, updated: '2014-12-03T00:00:00Z', links: [] };
}

export function registerExtensions(app: FastifyInstance, _compute: ComputeService): void {
  app.get('/v2.1/extensions', async () => ({ extensions: EXTENSIONS.map(view) }));
  app.get<{ Params: { alias: string } }>('/v2.1/extensions/:alias', async (req) => {
    const found = EXTENSIONS.find((e) => e[1] === req.params.alias);
    if (!found) throw notFound('Extension could not be found.');
    return { extension: view(found) };
  });
}
