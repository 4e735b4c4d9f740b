import type { ServiceClient } from '../../core/auth/service-client.js';
import type { NetworkInfo, RequestedNetwork, VifInfo } from '../rpc.js';

/**
 * What a compute agent asks of the network service for its servers (Nova's
 * neutronv2 API, small): ports made or bound for a server on this host,
 * unbound or deleted when it goes, and the network info cache rebuilt from
 * the ports.
 */
export class AgentNetworkApi {
  constructor(
    private readonly client: ServiceClient,
    private readonly host: string,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.client.request<T>('network', method, path, body === undefined ? {} : { body });
    if (res.status >= 400) {
      const detail = (res.body as { NeutronError?: { message?: string } } | null)?.NeutronError?.message ?? JSON.stringify(res.body);
      throw new NetworkApiError(res.status, `${method} ${path}: ${res.status} ${detail}`);
    }
    return res.body;
  }

  /** Security group ids of the named groups in the project (ids pass as they are). */
  private async securityGroupIds(projectId: string, names: string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const res = await this.call<{ security_groups: { id: string; name: string }[] }>('GET', `/v2.0/security-groups?project_id=${encodeURIComponent(projectId)}&fields=id&fields=name`);
    return names.map((name) => {
      const match = res.security_groups.find((g) => g.name === name || g.id === name);
      if (!match) throw new NetworkApiError(400, `Security group ${name} not found for project ${projectId}.`);
      return match.id;
    });
  }

  /**
   * Makes (or binds) the server's ports on this host. Returns the ids of the
   * ports and which of them compute made. On failure the ports made so far
   * are deleted and the bound ones unbound before it throws.
   */
  async allocate(server: { uuid: string; project_id: string; availability_zone: string | null }, requested: RequestedNetwork[], securityGroups: string[]): Promise<{ portId: string; created: boolean; tag: string | null }[]> {
    const done: { portId: string; created: boolean; tag: string | null }[] = [];
    try {
      const groups = await this.securityGroupIds(server.project_id, securityGroups);
      const binding = { device_id: server.uuid, device_owner: `compute:${server.availability_zone ?? 'nova'}`, 'binding:host_id': this.host };
      for (const r of requested) {
        if (r.port_id) {
          await this.call('PUT', `/v2.0/ports/${r.port_id}`, { port: binding });
          done.push({ portId: r.port_id, created: false, tag: r.tag ?? null });
          continue;
        }
        const port: Record<string, unknown> = { network_id: r.network_id, project_id: server.project_id, ...binding };
        if (r.fixed_ip) port.fixed_ips = [{ ip_address: r.fixed_ip }];
        const network = await this.call<{ network: { port_security_enabled?: boolean } }>('GET', `/v2.0/networks/${r.network_id}?fields=port_security_enabled`);
        if (network.network.port_security_enabled !== false) port.security_groups = groups;
        const res = await this.call<{ port: { id: string } }>('POST', '/v2.0/ports', { port });
        done.push({ portId: res.port.id, created: true, tag: r.tag ?? null });
      }
      return done;
    } catch (err) {
      await this.release(done.map((d) => ({ port_id: d.portId, preserve_on_delete: !d.created })));
      throw err;
    }
  }

  /** Deletes the ports compute made and unbinds the others. Never throws for a port already gone. */
  async release(vifs: Pick<VifInfo, 'port_id' | 'preserve_on_delete'>[]): Promise<void> {
    for (const vif of vifs) {
      try {
        if (vif.preserve_on_delete) await this.call('PUT', `/v2.0/ports/${vif.port_id}`, { port: { device_id: '', device_owner: '', 'binding:host_id': '' } });
        else await this.call('DELETE', `/v2.0/ports/${vif.port_id}`);
      } catch (err) {
        if (!(err instanceof NetworkApiError && err.status === 404)) throw err;
      }
    }
  }

  /**
   * Binds the ports to `host` (`''`: unbinds them, keeping them the
   * server's, as a shelve offload does). Ports gone meanwhile are skipped.
   */
  async bindPorts(portIds: string[], host: string): Promise<void> {
    for (const id of portIds) {
      try {
        await this.call('PUT', `/v2.0/ports/${id}`, { port: { 'binding:host_id': host } });
      } catch (err) {
        if (!(err instanceof NetworkApiError && err.status === 404)) throw err;
      }
    }
  }

  /** The network info cache of a server: its ports with addresses and floating IPs, in `order`. */
  async networkInfo(serverUuid: string, order: { portId: string; created: boolean; tag: string | null }[]): Promise<NetworkInfo> {
    const ports = await this.call<{ ports: { id: string; network_id: string; mac_address: string; status: string; fixed_ips: { ip_address: string; subnet_id: string }[] }[] }>('GET', `/v2.0/ports?device_id=${serverUuid}`);
    if (ports.ports.length === 0) return [];
    const networkIds = [...new Set(ports.ports.map((p) => p.network_id))];
    const networks = await this.call<{ networks: { id: string; name: string }[] }>('GET', `/v2.0/networks?${networkIds.map((id) => `id=${id}`).join('&')}&fields=id&fields=name`);
    const fips = await this.call<{ floatingips: { port_id: string | null; fixed_ip_address: string | null; floating_ip_address: string }[] }>('GET', `/v2.0/floatingips?${ports.ports.map((p) => `port_id=${p.id}`).join('&')}`);
    const rank = (id: string): number => {
      const i = order.findIndex((o) => o.portId === id);
      return i < 0 ? order.length : i;
    };
    return [...ports.ports]
      .sort((a, b) => rank(a.id) - rank(b.id))
      .map((p) => {
        const known = order.find((o) => o.portId === p.id);
        return {
          port_id: p.id,
          network_id: p.network_id,
          network_name: networks.networks.find((n) => n.id === p.network_id)?.name ?? p.network_id,
          mac_address: p.mac_address,
          fixed_ips: p.fixed_ips.map((ip) => ({
            ip_address: ip.ip_address,
            subnet_id: ip.subnet_id,
            version: ip.ip_address.includes(':') ? 6 : 4,
            floating_ips: fips.floatingips.filter((f) => f.port_id === p.id && f.fixed_ip_address === ip.ip_address).map((f) => f.floating_ip_address),
          })),
          preserve_on_delete: known ? !known.created : true,
          tag: known?.tag ?? null,
          active: p.status === 'ACTIVE',
          devname: `tap${p.id.slice(0, 11)}`,
        } satisfies VifInfo;
      });
  }
}

/** A network service answer that is not a success. */
export class NetworkApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'NetworkApiError';
  }
}
