/**
 * buildah and mmdebstrap for the container image test: finding (or installing) the tools, one
 * fixed storage directory so the local base images survive between runs, and running commands.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Where buildah keeps images and containers (vfs driver): fixed, so a second run reuses the bases. */
export const STORE = process.env.XCRON_IMAGE_STORE ?? '/var/tmp/xcron-image-test';

export const BUILDAH_GLOBAL = ['--root', join(STORE, 'root'), '--runroot', join(STORE, 'runroot'), '--storage-driver', 'vfs'];

/** Runs buildah with the fixed storage; rejects with its stderr on failure. */
export async function buildah(args: string[], timeoutMs = 30 * 60_000): Promise<string> {
  try {
    const { stdout } = await execFileP('buildah', [...BUILDAH_GLOBAL, ...args], { maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`buildah ${args.join(' ')} failed: ${err.message}\n${(err.stdout ?? '').slice(-4000)}\n${(err.stderr ?? '').slice(-4000)}`);
  }
}

function has(cmd: string, arg = '--version'): boolean {
  const r = spawnSync(cmd, [arg], { encoding: 'utf8' });
  return r.status === 0;
}

/**
 * Makes buildah and mmdebstrap available (installs them with apt-get when missing and running as
 * root) and checks that buildah can work in the fixed storage. Returns null when usable, or the
 * reason it is not.
 */
export function toolsUnavailable(): string | null {
  if (!has('buildah') || !has('mmdebstrap')) {
    if (process.getuid?.() !== 0) return 'buildah or mmdebstrap is missing and this is not root (apt-get install -y buildah mmdebstrap)';
    const r = spawnSync('bash', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah mmdebstrap'], { encoding: 'utf8', timeout: 15 * 60_000 });
    if (r.status !== 0 || !has('buildah') || !has('mmdebstrap')) {
      return `buildah or mmdebstrap is missing and apt-get could not install them: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' / ')}`;
    }
  }
  if (process.getuid?.() !== 0) return 'the image test runs buildah with chroot isolation, which needs root';
  mkdirSync(STORE, { recursive: true });
  const probe = spawnSync('buildah', [...BUILDAH_GLOBAL, 'from', 'scratch'], { encoding: 'utf8' });
  if (probe.status !== 0) return `buildah cannot run here: ${probe.stderr.trim()}`;
  spawnSync('buildah', [...BUILDAH_GLOBAL, 'rm', probe.stdout.trim()], { encoding: 'utf8' });
  return null;
}

/** A tag for the local base images that changes with everything they are made of. */
export function baseTagSuffix(repoRoot: string): string {
  const h = createHash('sha256');
  h.update(readFileSync(join(repoRoot, 'deploy/build-local-base.sh')));
  h.update(process.version);
  h.update(readFileSync('/etc/os-release'));
  return h.digest('hex').slice(0, 12);
}

export async function imageExists(tag: string): Promise<boolean> {
  try {
    await execFileP('buildah', [...BUILDAH_GLOBAL, 'inspect', '--type', 'image', tag], { maxBuffer: 16 * 1024 * 1024 });
    return true;
  } catch {
    return false;
  }
}

/** The parts of an image's configuration the test checks and runs with. */
export interface ImageConfig {
  User?: string;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  Env?: string[];
  WorkingDir?: string;
  Volumes?: Record<string, unknown> | null;
  ExposedPorts?: Record<string, unknown> | null;
  Healthcheck?: { Test?: string[] } | null;
}

export async function imageConfig(tag: string): Promise<ImageConfig> {
  const info = JSON.parse(await buildah(['inspect', '--type', 'image', tag])) as {
    Docker?: { config?: ImageConfig };
    OCIv1?: { config?: ImageConfig };
  };
  return { ...(info.OCIv1?.config ?? {}), ...(info.Docker?.config ?? {}) };
}
