import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  findCgroup2Mount,
  parseMountInfo,
  readCgroup2Mount,
} from '../../src/identity/mountinfo.js';

// Hybrid host: this machine's /proc/self/mountinfo (cgroup v1 controllers + cgroup2 at unified).
const HYBRID = `22 27 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

// Pure cgroup v2 host (systemd default since ~2021).
const PURE_V2 = `24 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

// A container that bind-mounts a sub-cgroup first and the host hierarchy later.
const CONTAINER = `500 400 0:30 /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw
501 400 0:30 / /host/sys/fs/cgroup ro,nosuid master:9 - cgroup2 cgroup2 rw
`;

describe('parseMountInfo', () => {
  it('splits the fixed fields, the optional fields and the fields after the separator', () => {
    const [entry] = parseMountInfo(
      '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n',
    );
    expect(entry).toEqual({
      mountId: 36,
      parentId: 35,
      majorMinor: '98:0',
      root: '/mnt1',
      mountPoint: '/mnt2',
      mountOptions: 'rw,noatime',
      optionalFields: ['master:1', 'shared:2'],
      fsType: 'ext3',
      source: '/dev/root',
      superOptions: 'rw,errors=continue',
    });
  });

  it('handles lines without optional fields', () => {
    const entries = parseMountInfo(HYBRID);
    expect(entries).toHaveLength(5);
    expect(entries[4]).toMatchObject({
      mountPoint: '/sys/fs/cgroup/unified',
      fsType: 'cgroup2',
      optionalFields: [],
    });
  });

  it('decodes octal escapes in paths', () => {
    const [entry] = parseMountInfo(
      '90 24 0:50 /a\\134b /mnt/with\\040space\\011tab rw - cgroup2 none rw\n',
    );
    expect(entry?.root).toBe('/a\\b');
    expect(entry?.mountPoint).toBe('/mnt/with space\ttab');
  });

  it.each([
    {
      name: 'no separator',
      line: '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime cgroup2 cgroup2 rw',
    },
    { name: 'too few fields', line: '41 31 0:38 /' },
    { name: 'non-numeric id', line: 'x 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw' },
  ])('rejects a malformed line ($name) and names its number', ({ line }) => {
    expect(() => parseMountInfo(`${HYBRID}${line}\n`)).toThrow(/mountinfo line 6 is malformed/);
  });
});

describe('findCgroup2Mount', () => {
  it.each([
    {
      name: 'hybrid host',
      text: HYBRID,
      want: { mountPoint: '/sys/fs/cgroup/unified', root: '/' },
    },
    { name: 'pure v2 host', text: PURE_V2, want: { mountPoint: '/sys/fs/cgroup', root: '/' } },
    {
      name: 'container: prefers the mount that shows the whole hierarchy',
      text: CONTAINER,
      want: { mountPoint: '/host/sys/fs/cgroup', root: '/' },
    },
    {
      name: 'only a sub-cgroup mount: its root is reported',
      text: CONTAINER.split('\n')[0] ?? '',
      want: {
        mountPoint: '/sys/fs/cgroup',
        root: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice',
      },
    },
    { name: 'v1 only', text: HYBRID.split('\n').slice(0, 4).join('\n'), want: undefined },
  ])('$name', ({ text, want }) => {
    expect(findCgroup2Mount(parseMountInfo(text))).toEqual(want);
  });
});

describe('readCgroup2Mount', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dnsrace-mountinfo-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads an injected mountinfo file', async () => {
    const path = join(dir, 'mountinfo');
    await writeFile(path, PURE_V2);
    await expect(readCgroup2Mount(path)).resolves.toEqual({
      mountPoint: '/sys/fs/cgroup',
      root: '/',
    });
  });

  it('says what to do when no cgroup2 is mounted', async () => {
    const path = join(dir, 'mountinfo');
    await writeFile(path, HYBRID.split('\n').slice(0, 4).join('\n'));
    await expect(readCgroup2Mount(path)).rejects.toThrow(
      /no cgroup2 filesystem is mounted.*mount -t cgroup2/,
    );
  });

  it('names the file it could not read', async () => {
    const missing = join(dir, 'nope');
    await expect(readCgroup2Mount(missing)).rejects.toThrow(`cannot read ${missing}`);
  });

  it('finds the cgroup2 mount of this process (real /proc)', async () => {
    const mount = await readCgroup2Mount();
    expect(mount.mountPoint).toMatch(/^\/sys\/fs\/cgroup(\/unified)?$/);
  });
});
