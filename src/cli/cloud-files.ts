import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';

export interface CloudCredentials {
  authUrl: string;
  username: string;
  password: string;
  projectName: string;
  region: string;
}

/**
 * Writes `clouds.yaml` (cloud `stratus`) and `openrc` into the data
 * directory, readable by the owner only: they hold the admin password.
 */
export function writeCloudFiles(dataDir: string, c: CloudCredentials): { cloudsYaml: string; openrc: string } {
  const cloudsYaml = path.join(dataDir, 'clouds.yaml');
  const openrc = path.join(dataDir, 'openrc');
  const clouds = {
    clouds: {
      stratus: {
        auth: { auth_url: c.authUrl, username: c.username, password: c.password, project_name: c.projectName, user_domain_name: 'Default', project_domain_name: 'Default' },
        region_name: c.region,
        interface: 'public',
        identity_api_version: 3,
      },
    },
  };
  fs.writeFileSync(cloudsYaml, stringify(clouds), { mode: 0o600 });
  const q = (v: string): string => `'${v.replaceAll("'", "'\\''")}'`;
  const rc = [
    '# Source this file to use the Stratus cloud with the OpenStack clients.',
    `export OS_AUTH_URL=${q(c.authUrl)}`,
    `export OS_USERNAME=${q(c.username)}`,
    `export OS_PASSWORD=${q(c.password)}`,
    `export OS_PROJECT_NAME=${q(c.projectName)}`,
    "export OS_USER_DOMAIN_NAME='Default'",
    "export OS_PROJECT_DOMAIN_NAME='Default'",
    `export OS_REGION_NAME=${q(c.region)}`,
    'export OS_IDENTITY_API_VERSION=3',
    "export OS_INTERFACE='public'",
    '',
  ].join('\n');
  fs.writeFileSync(openrc, rc, { mode: 0o600 });
  return { cloudsYaml, openrc };
}
