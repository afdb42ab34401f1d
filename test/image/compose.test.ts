/**
 * deploy/compose.yaml (3 xcron nodes, Redis with AOF, nginx), checked as far as it can be without
 * a container engine: its structure, every XCRON_* variable against the configuration schema, and
 * image, port, volume and upstream names against the Dockerfile and config/nginx.conf.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEnv, validateConfig } from '../../src/config/index.js';
import { REPO_ROOT } from '../helpers/server.js';

// js-yaml is locked in package-lock.json (a dependency of eslint); it understands the `<<` merge key.
const yaml = createRequire(import.meta.url)('js-yaml') as { load: (text: string) => unknown };

const COMPOSE_FILE = join(REPO_ROOT, 'deploy/compose.yaml');
const compose = yaml.load(readFileSync(COMPOSE_FILE, 'utf8')) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const nginxConf = readFileSync(join(REPO_ROOT, 'config/nginx.conf'), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  expose?: string[];
  depends_on?: Record<string, unknown> | string[];
  healthcheck?: { test: string[] };
}

const nodes = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
const exposed = /^EXPOSE (\d+)$/m.exec(runtimeStage)?.[1];
const volume = /^VOLUME \["([^"]+)"\]$/m.exec(runtimeStage)?.[1];

describe('deploy/compose.yaml', () => {
  it('has three xcron nodes, one Redis and nginx', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['nginx', 'redis', 'xcron-a', 'xcron-b', 'xcron-c']);
    expect(nodes.map(([name]) => name).sort()).toEqual(['xcron-a', 'xcron-b', 'xcron-c']);
  });

  it('runs Redis with AOF on, on a named volume', () => {
    const redis = compose.services.redis!;
    const cmd = redis.command ?? [];
    expect(cmd[0]).toBe('redis-server');
    expect(cmd[cmd.indexOf('--appendonly') + 1]).toBe('yes');
    expect(cmd).toContain('--appendfsync');
    const [vol, target] = (redis.volumes?.[0] ?? '').split(':');
    expect(target).toBe('/data');
    expect(Object.keys(compose.volumes ?? {})).toContain(vol);
  });

  it('builds every node from the repository Dockerfile into one image', () => {
    expect(exposed).toBe('8000');
    expect(volume).toBe('/data');
    const images = new Set(nodes.map(([, s]) => s.image));
    expect(images.size).toBe(1);
    for (const [name, s] of nodes) {
      const context = resolve(dirname(COMPOSE_FILE), s.build!.context);
      expect(context, name).toBe(REPO_ROOT);
      expect(existsSync(join(context, s.build!.dockerfile)), name).toBe(true);
      expect(s.expose, name).toEqual([exposed]);
      expect(s.healthcheck?.test.join(' '), name).toContain(`127.0.0.1:${exposed}/healthz`);
    }
  });

  it('sets only XCRON_* variables the configuration knows, valid together with the image ENV, one node id and one Redis each', () => {
    const imageEnv: Record<string, string> = {};
    const envBlock = /^ENV ((?:.*\\\n)*.*)$/m.exec(runtimeStage)?.[1] ?? '';
    for (const m of envBlock.matchAll(/([A-Z_]+)=(\S+)/g)) imageEnv[m[1]!] = m[2]!;
    expect(imageEnv.XCRON_DATA_DIR).toBe(volume);
    expect(imageEnv.XCRON_HTTP_PORT).toBe(exposed);
    const ids = new Set<string>();
    for (const [name, s] of nodes) {
      const env = { ...imageEnv, ...(s.environment ?? {}) };
      const xcronEnv = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('XCRON_')));
      // applyEnv rejects an unknown XCRON_* name; validateConfig rejects a bad value.
      const cfg = validateConfig(applyEnv({}, xcronEnv));
      expect(cfg.data_dir, name).toBe('/data');
      ids.add(cfg.node_id);
      const redisHost = new URL(cfg.cluster.redis_url).hostname;
      expect(compose.services[redisHost], `${name}: Redis host ${redisHost} is a service`).toBeDefined();
      const [vol, target] = (s.volumes?.[0] ?? '').split(':');
      expect(target, name).toBe(volume);
      expect(Object.keys(compose.volumes ?? {}), name).toContain(vol);
    }
    expect(ids.size).toBe(3);
    // Each node has a volume of its own.
    expect(new Set(nodes.map(([, s]) => s.volumes?.[0])).size).toBe(3);
  });

  it('puts nginx in front with config/nginx.conf, whose upstream is exactly the three nodes', () => {
    const nginx = compose.services.nginx!;
    const [src, target] = (nginx.volumes?.[0] ?? '').split(':');
    expect(resolve(dirname(COMPOSE_FILE), src!)).toBe(join(REPO_ROOT, 'config/nginx.conf'));
    expect(target).toBe('/etc/nginx/conf.d/default.conf');
    const upstream = /upstream xcron \{([\s\S]*?)\}/.exec(nginxConf)?.[1] ?? '';
    const servers = [...upstream.matchAll(/^\s*server (\S+)/gm)].map((m) => m[1]).sort();
    expect(servers).toEqual(nodes.map(([name]) => `${name}:${exposed}`).sort());
    const listen = /^\s*listen (\d+);/m.exec(nginxConf)?.[1];
    expect(nginx.ports?.[0]?.split(':')[1]).toBe(listen);
  });
});
