import { S3Client } from '@aws-sdk/client-s3';
import { createObjectTestCloud, type ObjectTestCloud, type TestUser } from '../testing.js';
import { canonicalRequest, parseQuery, sha256Hex, signingKey, signV4, stringToSignV4, uriEncode } from './signature.js';

/** An EC2 credential of a test user. */
export interface Ec2Credential {
  access: string;
  secret: string;
}

/** The object test cloud with S3 credentials and clients for alpha and beta. */
export interface S3TestCloud {
  cloud: ObjectTestCloud;
  alphaCred: Ec2Credential;
  betaCred: Ec2Credential;
  /** The AWS SDK, as alpha (path-style, region us-east-1). */
  alpha: S3Client;
  beta: S3Client;
  /** An S3 client with any credentials (wrong ones, for the error cases). */
  client(cred: Ec2Credential): S3Client;
  /** A raw request signed with SigV4 in the Authorization header (for what the SDK will not send). */
  signed(method: string, path: string, options?: SignedOptions): Promise<Response>;
  close(): Promise<void>;
}

/** Options of {@link S3TestCloud.signed}. */
export interface SignedOptions {
  query?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** `x-amz-content-sha256` (default: the SHA-256 of the body). */
  payloadHash?: string;
  cred?: Ec2Credential;
  /** Milliseconds added to the signing time. */
  skewMs?: number;
}

/** Makes an EC2 credential for a user through identity's OS-EC2 API, as `openstack ec2 credentials create` does. */
export async function ec2Credential(cloud: ObjectTestCloud, user: TestUser): Promise<Ec2Credential> {
  const res = await fetch(`${cloud.authUrl}/users/${user.userId}/credentials/OS-EC2`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': user.token },
    body: JSON.stringify({ tenant_id: user.projectId }),
  });
  const body = (await res.json()) as { credential: Ec2Credential };
  if (res.status !== 201) throw new Error(`cannot make an EC2 credential: ${res.status}`);
  return { access: body.credential.access, secret: body.credential.secret };
}

/** The SigV4 Authorization header and date of a request, signed as an S3 client signs it. */
export function signRequest(
  cred: Ec2Credential,
  method: string,
  path: string,
  query: string,
  headers: Record<string, string>,
  payloadHash: string,
  at = Date.now(),
): Record<string, string> {
  const date = new Date(at).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const all: Record<string, string> = { ...headers, 'x-amz-date': date, 'x-amz-content-sha256': payloadHash };
  const signedHeaders = Object.keys(all).map((k) => k.toLowerCase()).sort();
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) lower[k.toLowerCase()] = v;
  const scope = { date: date.slice(0, 8), region: 'us-east-1', service: 's3' };
  const canonical = canonicalRequest({ method, uri: uriEncode(path, true), query: parseQuery(query), headers: lower, signedHeaders, payloadHash }) ?? '';
  const signature = signV4(signingKey(cred.secret, scope), stringToSignV4(date, scope, canonical));
  return { ...all, authorization: `AWS4-HMAC-SHA256 Credential=${cred.access}/${scope.date}/us-east-1/s3/aws4_request, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}` };
}

/** Starts the object test cloud and makes S3 credentials and clients for alpha and beta. */
export async function startS3Cloud(): Promise<S3TestCloud> {
  const cloud = await createObjectTestCloud();
  try {
    const alphaCred = await ec2Credential(cloud, cloud.alpha);
    const betaCred = await ec2Credential(cloud, cloud.beta);
    const clients: S3Client[] = [];
    const client = (cred: Ec2Credential): S3Client => {
      const c = new S3Client({ endpoint: cloud.url, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: cred.access, secretAccessKey: cred.secret } });
      clients.push(c);
      return c;
    };
    const host = new URL(cloud.url).host;
    return {
      cloud,
      alphaCred,
      betaCred,
      alpha: client(alphaCred),
      beta: client(betaCred),
      client,
      async signed(method, path, options = {}) {
        const body = options.body === undefined ? undefined : Buffer.from(options.body);
        const payloadHash = options.payloadHash ?? sha256Hex(body ?? Buffer.alloc(0));
        const headers = signRequest(options.cred ?? alphaCred, method, path, options.query ?? '', { host, ...options.headers }, payloadHash, Date.now() + (options.skewMs ?? 0));
        delete headers.host;
        const url = `${cloud.url}${uriEncode(path, true)}${options.query ? `?${options.query}` : ''}`;
        return fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
      },
      async close() {
        for (const c of clients) c.destroy();
        await cloud.close();
      },
    };
  } catch (err) {
    await cloud.close();
    throw err;
  }
}
