import type { TestNetwork, TestUser } from '../testing.js';

/**
 * Topology helpers of the router and floating IP tests: networks, subnets
 * and ports made through the public API, as a user would.
 */

/** A network with one subnet, created by `user`. */
export async function networkWithSubnet(t: TestNetwork, user: TestUser, cidr: string, subnetExtra: Record<string, unknown> = {}, networkExtra: Record<string, unknown> = {}): Promise<{ network: Record<string, any>; subnet: Record<string, any> }> {
  const network = await t.create(user, 'networks', 'network', { name: `net-${cidr}`, ...networkExtra });
  const subnet = await createSubnet(t, user, network.id as string, cidr, subnetExtra);
  return { network, subnet };
}

/** A subnet through `POST /v2.0/subnets`. */
export async function createSubnet(t: TestNetwork, user: TestUser, networkId: string, cidr: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const ipVersion = cidr.includes(':') ? 6 : 4;
  return t.create(user, 'subnets', 'subnet', { network_id: networkId, cidr, ip_version: ipVersion, ...extra });
}

/** An external network (admin) with one subnet: what `public` is in a cloud. */
export async function externalNetwork(t: TestNetwork, cidr: string, subnetExtra: Record<string, unknown> = {}): Promise<{ network: Record<string, any>; subnet: Record<string, any> }> {
  return networkWithSubnet(t, t.admin, cidr, { enable_dhcp: false, ...subnetExtra }, { name: `public-${cidr}`, 'router:external': true });
}

/** A port on a network. */
export async function createPort(t: TestNetwork, user: TestUser, networkId: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  return t.create(user, 'ports', 'port', { network_id: networkId, ...extra });
}

/** A router, with a gateway to `externalId` when given. */
export async function createRouter(t: TestNetwork, user: TestUser, externalId?: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  return t.create(user, 'routers', 'router', { name: 'r', ...(externalId ? { external_gateway_info: { network_id: externalId } } : {}), ...extra });
}

/** `PUT /v2.0/routers/<id>/<action>` with a raw body. */
export async function routerAction(t: TestNetwork, user: TestUser, routerId: string, action: string, body: unknown): Promise<{ status: number; body: Record<string, any> }> {
  return t.request('PUT', `/v2.0/routers/${routerId}/${action}`, { user, payload: body });
}
