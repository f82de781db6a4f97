import { describe, expect, it } from 'vitest';
import { normalisePodUid, parseKubepodsCgroupPath } from '../../src/identity/cgroup-path.js';
import type { KubepodsCgroup } from '../../src/identity/types.js';

// Paths below are real ones quoted by projects that parse them (falcosecurity/libs container
// tests, spiffe/spire k8s workload attestor tests, open-telemetry eBPF instrumentation and Java
// instrumentation tests, kind node listings), plus our lab's prefixed form.

type Row = { name: string; path: string; want: KubepodsCgroup };

const rows: Row[] = [
  // --- systemd driver ------------------------------------------------------------------------
  {
    name: 'containerd, systemd, burstable (EKS)',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poddde1244b_5bb5_4297_b544_85f3bc0d80bf.slice/cri-containerd-acb62391578595ec849d87d8556369cee7f935f0425097fd5f870df0e8aabd3c.scope',
    want: {
      podUid: 'dde1244b-5bb5-4297-b544-85f3bc0d80bf',
      qos: 'burstable',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'containerd',
        id: 'acb62391578595ec849d87d8556369cee7f935f0425097fd5f870df0e8aabd3c',
      },
    },
  },
  {
    name: 'containerd, systemd, static pod with 32-hex uid',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7260904bbd08e72e4dff95d9fccd2ee8.slice/cri-containerd-d36686f9785534531160dc936aec9d711a26eb37f4fc7752a2ae27d0a24345c1.scope',
    want: {
      podUid: '7260904bbd08e72e4dff95d9fccd2ee8',
      qos: 'burstable',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'containerd',
        id: 'd36686f9785534531160dc936aec9d711a26eb37f4fc7752a2ae27d0a24345c1',
      },
    },
  },
  {
    name: 'containerd, systemd, guaranteed sits directly under kubepods.slice',
    path: '/kubepods.slice/kubepods-pod2d51509a_fcf0_41cc_b535_57cfeeaf73d1.slice/cri-containerd-0853fad78812e955b92d871d8d597d9bc598e34320c9edbfab0a73eacf150145.scope',
    want: {
      podUid: '2d51509a-fcf0-41cc-b535-57cfeeaf73d1',
      qos: 'guaranteed',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'containerd',
        id: '0853fad78812e955b92d871d8d597d9bc598e34320c9edbfab0a73eacf150145',
      },
    },
  },
  {
    name: 'containerd, systemd, besteffort, no leading slash (walker output)',
    path: 'kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod6dc88073_2128_40d6_9dbc_0ba508da7fe8.slice/cri-containerd-123cd1db937c3c2d0d7772ef9b0a1c4b0b3dcfcb6b889452a90b2fcb43eae43a.scope',
    want: {
      podUid: '6dc88073-2128-40d6-9dbc-0ba508da7fe8',
      qos: 'besteffort',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'containerd',
        id: '123cd1db937c3c2d0d7772ef9b0a1c4b0b3dcfcb6b889452a90b2fcb43eae43a',
      },
    },
  },
  {
    name: 'pod-level cgroup, systemd burstable',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod73dc8baf_43a0_413e_aac2_5eb0868f6c1a.slice',
    want: {
      podUid: '73dc8baf-43a0-413e-aac2-5eb0868f6c1a',
      qos: 'burstable',
      driver: 'systemd',
      role: 'pod',
    },
  },
  {
    name: 'pod-level cgroup, systemd guaranteed',
    path: '/kubepods.slice/kubepods-pod2d51509a_fcf0_41cc_b535_57cfeeaf73d1.slice',
    want: {
      podUid: '2d51509a-fcf0-41cc-b535-57cfeeaf73d1',
      qos: 'guaranteed',
      driver: 'systemd',
      role: 'pod',
    },
  },
  {
    name: 'CRI-O, systemd, besteffort (falco crio_systemd)',
    path: '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod63b3ebfc_2890_11e9_8154_16bf8ef8d9dc.slice/crio-17d8c9eacc629f9945f304d89e9708c0c619649a484a215b240628319548a09f.scope',
    want: {
      podUid: '63b3ebfc-2890-11e9-8154-16bf8ef8d9dc',
      qos: 'besteffort',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'cri-o',
        id: '17d8c9eacc629f9945f304d89e9708c0c619649a484a215b240628319548a09f',
      },
    },
  },
  {
    name: 'CRI-O, systemd, minikube',
    path: '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod561fd272_d131_47ef_a01b_46a997a778f3.slice/crio-030ded69d4c98fcf69c988f75a5eb3a1b4357e1432bd5510c936a40d7e9a1198.scope',
    want: {
      podUid: '561fd272-d131-47ef-a01b-46a997a778f3',
      qos: 'besteffort',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'cri-o',
        id: '030ded69d4c98fcf69c988f75a5eb3a1b4357e1432bd5510c936a40d7e9a1198',
      },
    },
  },
  {
    name: "CRI-O with crun: the scope's nested 'container' child is still the container",
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod73dc8baf_43a0_413e_aac2_5eb0868f6c1a.slice/crio-f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31.scope/container',
    want: {
      podUid: '73dc8baf-43a0-413e-aac2-5eb0868f6c1a',
      qos: 'burstable',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'cri-o',
        id: 'f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31',
      },
    },
  },
  {
    name: 'CRI-O conmon scope belongs to the pod but is not a container',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod73dc8baf_43a0_413e_aac2_5eb0868f6c1a.slice/crio-conmon-f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31.scope',
    want: {
      podUid: '73dc8baf-43a0-413e-aac2-5eb0868f6c1a',
      qos: 'burstable',
      driver: 'systemd',
      role: 'other',
    },
  },
  {
    name: 'CRI-O sandbox cgroup (bare crio-<id> under a pod slice) is not a container',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod73dc8baf_43a0_413e_aac2_5eb0868f6c1a.slice/crio-c81572302e4a00c05810fc436ebc0952ed7a0806c58a2b7eddbfb58de4539206',
    want: {
      podUid: '73dc8baf-43a0-413e-aac2-5eb0868f6c1a',
      qos: 'burstable',
      driver: 'systemd',
      role: 'other',
    },
  },
  {
    name: 'Docker (cri-dockerd), systemd, slice written with dashes (spire test)',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2c48913c-b29f-11e7-9350-020968147796.slice/docker-9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961.scope',
    want: {
      podUid: '2c48913c-b29f-11e7-9350-020968147796',
      qos: 'burstable',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'docker',
        id: '9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961',
      },
    },
  },
  {
    name: 'Docker (dockershim), systemd, guaranteed',
    path: '/kubepods.slice/kubepods-pod2d51509a_fcf0_41cc_b535_57cfeeaf73d1.slice/docker-7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8.scope',
    want: {
      podUid: '2d51509a-fcf0-41cc-b535-57cfeeaf73d1',
      qos: 'guaranteed',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'docker',
        id: '7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8',
      },
    },
  },
  {
    name: 'kind: kubelet --cgroup-root=/kubelet prefixes every slice name',
    path: '/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod6de31acc_3b6d_4fe3_bd53_2cc9ddcd1b0e.slice/cri-containerd-8447f8fa852e0fb592bb4bc23c5f46f5c0ce260c63fab167629176e7695d5209.scope',
    want: {
      podUid: '6de31acc-3b6d-4fe3-bd53-2cc9ddcd1b0e',
      qos: 'besteffort',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'containerd',
        id: '8447f8fa852e0fb592bb4bc23c5f46f5c0ce260c63fab167629176e7695d5209',
      },
    },
  },
  {
    name: 'kind: guaranteed pod slice under kubelet-kubepods.slice',
    path: '/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod2d51509a_fcf0_41cc_b535_57cfeeaf73d1.slice',
    want: {
      podUid: '2d51509a-fcf0-41cc-b535-57cfeeaf73d1',
      qos: 'guaranteed',
      driver: 'systemd',
      role: 'pod',
    },
  },
  {
    name: 'kind node inside Docker: /docker/<node>/ prefix in front of the systemd tree',
    path: '/docker/93529524695bb00d91c1f6dba692ea8d3550c3b94fb2463af7bc9ec82f992d26/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod83b090de_9676_407c_99aa_d33dc6aa0c0d.slice/cri-containerd-18b2adc8507104e412c946bec11679590801f547eee513fa298054f14fbf4240.scope',
    want: {
      podUid: '83b090de-9676-407c-99aa-d33dc6aa0c0d',
      qos: 'besteffort',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'containerd',
        id: '18b2adc8507104e412c946bec11679590801f547eee513fa298054f14fbf4240',
      },
    },
  },
  {
    name: 'our lab: kubepods tree below /dnsrace-lab-<id>',
    path: '/dnsrace-lab-x1/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod11111111_2222_4333_8444_555555555555.slice/cri-containerd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.scope',
    want: {
      podUid: '11111111-2222-4333-8444-555555555555',
      qos: 'besteffort',
      driver: 'systemd',
      role: 'container',
      container: { runtime: 'containerd', id: 'a'.repeat(64) },
    },
  },
  {
    name: 'our lab: pod-level cgroup below the prefix',
    path: '/dnsrace-lab-x1/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod11111111_2222_4333_8444_555555555555.slice',
    want: {
      podUid: '11111111-2222-4333-8444-555555555555',
      qos: 'burstable',
      driver: 'systemd',
      role: 'pod',
    },
  },
  {
    name: 'an unrecognised child of a pod slice still belongs to the pod',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod73dc8baf_43a0_413e_aac2_5eb0868f6c1a.slice/cri-containerd-abc.scope',
    want: {
      podUid: '73dc8baf-43a0-413e-aac2-5eb0868f6c1a',
      qos: 'burstable',
      driver: 'systemd',
      role: 'other',
    },
  },

  // --- systemd notation used as a directory name ("slice:prefix:id") ---------------------------
  {
    name: 'containerd with SystemdCgroup=false: slice:cri-containerd:id below containerd.service (v1 devices line)',
    path: '/system.slice/containerd.service/kubepods-pod87a18a64_b74a_454a_b10b_a4a36059d0a3.slice:cri-containerd:05c48c82caff3be3d7f1e896981dd410e81487538936914f32b624d168de9db0',
    want: {
      podUid: '87a18a64-b74a-454a-b10b-a4a36059d0a3',
      qos: 'guaranteed',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'containerd',
        id: '05c48c82caff3be3d7f1e896981dd410e81487538936914f32b624d168de9db0',
      },
    },
  },
  {
    name: 'slice:cri-containerd:id directly below system.slice (cgroup v2 line)',
    path: '/system.slice/kubepods-burstable-pod22fd933a_ee61_46bd_93ae_ebace73c1160.slice:cri-containerd:3a31a360e5aea903274416e0c4cf8ca8c050fd523cc5d91a82ec5707d5ee9fa1',
    want: {
      podUid: '22fd933a-ee61-46bd-93ae-ebace73c1160',
      qos: 'burstable',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'containerd',
        id: '3a31a360e5aea903274416e0c4cf8ca8c050fd523cc5d91a82ec5707d5ee9fa1',
      },
    },
  },
  {
    name: 'slice:cri-containerd:id at the root (falco containerd_unknown), static-pod uid',
    path: '/kubepods-burstable-podbd12dd3393227d950605a2444b13c27a.slice:cri-containerd:d52db56a9c80d536a91354c0951c061187ca46249e64865a12703003d8f42366',
    want: {
      podUid: 'bd12dd3393227d950605a2444b13c27a',
      qos: 'burstable',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'containerd',
        id: 'd52db56a9c80d536a91354c0951c061187ca46249e64865a12703003d8f42366',
      },
    },
  },
  {
    name: 'slice:cri-containerd:id, besteffort (spire test)',
    path: '/kubepods-besteffort-pod72f7f152_440c_66ac_9084_e0fc1d8a910c.slice:cri-containerd:b2a102854b4969b2ce98dc329c86b4fb2b06e4ad2cc8da9d8a7578c9cd2004a2',
    want: {
      podUid: '72f7f152-440c-66ac-9084-e0fc1d8a910c',
      qos: 'besteffort',
      driver: 'systemd',
      role: 'container',
      container: {
        runtime: 'containerd',
        id: 'b2a102854b4969b2ce98dc329c86b4fb2b06e4ad2cc8da9d8a7578c9cd2004a2',
      },
    },
  },

  // --- cgroupfs driver -----------------------------------------------------------------------
  {
    name: 'cgroupfs burstable, bare id: containerd or Docker, runtime unknown',
    path: '/kubepods/burstable/pod2c48913c-b29f-11e7-9350-020968147796/34a2062fd26c805aa8cf814cdfe479322b791f80afb9ea4db02d50375df14b41',
    want: {
      podUid: '2c48913c-b29f-11e7-9350-020968147796',
      qos: 'burstable',
      driver: 'cgroupfs',
      role: 'container',
      container: {
        runtime: 'unknown',
        id: '34a2062fd26c805aa8cf814cdfe479322b791f80afb9ea4db02d50375df14b41',
      },
    },
  },
  {
    name: 'cgroupfs guaranteed sits directly under kubepods',
    path: '/kubepods/pod2c48913c-b29f-11e7-9350-020968147796/9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961',
    want: {
      podUid: '2c48913c-b29f-11e7-9350-020968147796',
      qos: 'guaranteed',
      driver: 'cgroupfs',
      role: 'container',
      container: {
        runtime: 'unknown',
        id: '9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961',
      },
    },
  },
  {
    name: 'cgroupfs besteffort (falco containerd_cgroupfs)',
    path: '/kubepods/besteffort/podac04f3f2-1f2c-11e9-b015-1ebee232acfa/605439acbd4fb18c145069289094b17f17e0cfa938f78012d4960bc797305f22',
    want: {
      podUid: 'ac04f3f2-1f2c-11e9-b015-1ebee232acfa',
      qos: 'besteffort',
      driver: 'cgroupfs',
      role: 'container',
      container: {
        runtime: 'unknown',
        id: '605439acbd4fb18c145069289094b17f17e0cfa938f78012d4960bc797305f22',
      },
    },
  },
  {
    name: 'cgroupfs CRI-O container is crio-<id> without .scope',
    path: '/kubepods/besteffort/pod63b3ebfc-2890-11e9-8154-16bf8ef8d9dc/crio-73bfe475650de66df8e2affdc98d440dcbe84f8df83b6f75a68a82eb7026136a',
    want: {
      podUid: '63b3ebfc-2890-11e9-8154-16bf8ef8d9dc',
      qos: 'besteffort',
      driver: 'cgroupfs',
      role: 'container',
      container: {
        runtime: 'cri-o',
        id: '73bfe475650de66df8e2affdc98d440dcbe84f8df83b6f75a68a82eb7026136a',
      },
    },
  },
  {
    name: 'cgroupfs CRI-O conmon directory is not a container',
    path: '/kubepods/besteffort/pod63b3ebfc-2890-11e9-8154-16bf8ef8d9dc/crio-conmon-73bfe475650de66df8e2affdc98d440dcbe84f8df83b6f75a68a82eb7026136a',
    want: {
      podUid: '63b3ebfc-2890-11e9-8154-16bf8ef8d9dc',
      qos: 'besteffort',
      driver: 'cgroupfs',
      role: 'other',
    },
  },
  {
    name: 'cgroupfs GKE containerd, static-pod uid, guaranteed',
    path: '/kubepods/podb53dfa9e2dc9b890f7fadb2770857b03/bb959773d06ad1a07d469bced637bbc49b6f8573c493fd0548d7f5810eb3e5a8',
    want: {
      podUid: 'b53dfa9e2dc9b890f7fadb2770857b03',
      qos: 'guaranteed',
      driver: 'cgroupfs',
      role: 'container',
      container: {
        runtime: 'unknown',
        id: 'bb959773d06ad1a07d469bced637bbc49b6f8573c493fd0548d7f5810eb3e5a8',
      },
    },
  },
  {
    name: 'cgroupfs pod-level cgroup',
    path: '/kubepods/poda2830d0d-b0f0-4ff0-81b5-0ee4e299cf80',
    want: {
      podUid: 'a2830d0d-b0f0-4ff0-81b5-0ee4e299cf80',
      qos: 'guaranteed',
      driver: 'cgroupfs',
      role: 'pod',
    },
  },
  {
    name: 'cgroupfs pod-level cgroup of a static pod',
    path: '/kubepods/burstable/pod2732ca68f6358eba7703fb6f82a25c94',
    want: {
      podUid: '2732ca68f6358eba7703fb6f82a25c94',
      qos: 'burstable',
      driver: 'cgroupfs',
      role: 'pod',
    },
  },
  {
    name: 'kind (cgroupfs) node inside Docker: /docker/<node>/kubepods/...',
    path: '/docker/93529524695bb00d91c1f6dba692ea8d3550c3b94fb2463af7bc9ec82f992d26/kubepods/besteffort/poda2830d0d-b0f0-4ff0-81b5-0ee4e299cf80/09bc3d7ade839efec32b6bec4ec79d099027a668ddba043083ec21d3c3b8f1e6',
    want: {
      podUid: 'a2830d0d-b0f0-4ff0-81b5-0ee4e299cf80',
      qos: 'besteffort',
      driver: 'cgroupfs',
      role: 'container',
      container: {
        runtime: 'unknown',
        id: '09bc3d7ade839efec32b6bec4ec79d099027a668ddba043083ec21d3c3b8f1e6',
      },
    },
  },
  {
    name: 'Docker Desktop: kubepods twice',
    path: '/kubepods/kubepods/besteffort/pod6bd2a4d3-a55a-4450-b6fd-2a7ecc72c904/a55d9ac3b312d8a2627824b6d6dd8af66fbec439bf4e0ec22d6d9945ad337a38',
    want: {
      podUid: '6bd2a4d3-a55a-4450-b6fd-2a7ecc72c904',
      qos: 'besteffort',
      driver: 'cgroupfs',
      role: 'container',
      container: {
        runtime: 'unknown',
        id: 'a55d9ac3b312d8a2627824b6d6dd8af66fbec439bf4e0ec22d6d9945ad337a38',
      },
    },
  },
  {
    name: 'kubelet --cgroup-root=/kubelet with cgroupfs',
    path: '/kubelet/kubepods/burstable/pod73dc8baf-43a0-413e-aac2-5eb0868f6c1a/f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31',
    want: {
      podUid: '73dc8baf-43a0-413e-aac2-5eb0868f6c1a',
      qos: 'burstable',
      driver: 'cgroupfs',
      role: 'container',
      container: {
        runtime: 'unknown',
        id: 'f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31',
      },
    },
  },
  {
    name: 'cgroupfs uid written with underscores is canonicalised',
    path: '/kubepods/pod2c48913c_b29f_11e7_9350_020968147796/9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961',
    want: {
      podUid: '2c48913c-b29f-11e7-9350-020968147796',
      qos: 'guaranteed',
      driver: 'cgroupfs',
      role: 'container',
      container: {
        runtime: 'unknown',
        id: '9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961',
      },
    },
  },
  {
    name: 'kind running inside a pod: the outer (host-visible) pod owns the traffic',
    path: '/kubepods/burstable/pod2c48913c-b29f-11e7-9350-020968147796/9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961/kubelet/kubepods/besteffort/poda2830d0d-b0f0-4ff0-81b5-0ee4e299cf80/09bc3d7ade839efec32b6bec4ec79d099027a668ddba043083ec21d3c3b8f1e6',
    want: {
      podUid: '2c48913c-b29f-11e7-9350-020968147796',
      qos: 'burstable',
      driver: 'cgroupfs',
      role: 'container',
      container: {
        runtime: 'unknown',
        id: '9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961',
      },
    },
  },
];

const outsidePods: Array<{ name: string; path: string }> = [
  { name: 'hierarchy root', path: '/' },
  { name: 'empty path', path: '' },
  { name: 'systemd service', path: '/system.slice/containerd.service' },
  { name: 'user session', path: '/user.slice/user-1000.slice/session-3.scope' },
  { name: 'init scope', path: '/init.scope' },
  { name: 'kubelet service in kind', path: '/kubelet.slice/kubelet.service' },
  { name: 'kubepods root, systemd', path: '/kubepods.slice' },
  { name: 'QoS slice, systemd', path: '/kubepods.slice/kubepods-burstable.slice' },
  { name: 'kubepods root, cgroupfs', path: '/kubepods' },
  { name: 'QoS directory, cgroupfs', path: '/kubepods/besteffort' },
  {
    name: 'plain Docker container, systemd',
    path: '/system.slice/docker-9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d.scope',
  },
  {
    name: 'plain Docker container, cgroupfs',
    path: '/docker/7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8',
  },
  {
    name: 'CRI-O conmon placed in system.slice (conmon_cgroup = system.slice)',
    path: '/system.slice/crio-conmon-73bfe475650de66df8e2affdc98d440dcbe84f8df83b6f75a68a82eb7026136a.scope',
  },
  { name: 'lab cgroup that is not a kubepods tree', path: '/dnsrace-lab-x1/poda' },
  {
    name: 'pod-like directory without the kubelet parents',
    path: '/something/poda2830d0d-b0f0-4ff0-81b5-0ee4e299cf80/09bc3d7ade839efec32b6bec4ec79d099027a668ddba043083ec21d3c3b8f1e6',
  },
  {
    name: 'pod-like directory at the root',
    path: '/poda2830d0d-b0f0-4ff0-81b5-0ee4e299cf80/09bc3d7ade839efec32b6bec4ec79d099027a668ddba043083ec21d3c3b8f1e6',
  },
  {
    name: 'container id without a pod',
    path: '/kubepods/09bc3d7ade839efec32b6bec4ec79d099027a668ddba043083ec21d3c3b8f1e6',
  },
  {
    name: 'pod slice whose uid is not a uid',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podnot-a-uid.slice',
  },
  { name: 'cgroupfs pod whose uid is too short', path: '/kubepods/burstable/pod1234/abc' },
  {
    name: 'QoS directory name that is not a QoS class',
    path: '/kubepods/guaranteed/poda2830d0d-b0f0-4ff0-81b5-0ee4e299cf80',
  },
];

describe('parseKubepodsCgroupPath', () => {
  it.each(rows)('$name', ({ path, want }) => {
    expect(parseKubepodsCgroupPath(path)).toEqual(want);
  });

  it.each(outsidePods)('outside every pod: $name', ({ path }) => {
    expect(parseKubepodsCgroupPath(path)).toBeNull();
  });

  it('covers every runtime, QoS class, driver and role at least once', () => {
    const parsed = rows.map((r) => r.want);
    expect(new Set(parsed.map((p) => p.container?.runtime).filter(Boolean))).toEqual(
      new Set(['containerd', 'cri-o', 'docker', 'unknown']),
    );
    expect(new Set(parsed.map((p) => p.qos))).toEqual(
      new Set(['guaranteed', 'burstable', 'besteffort']),
    );
    expect(new Set(parsed.map((p) => p.driver))).toEqual(new Set(['systemd', 'cgroupfs']));
    expect(new Set(parsed.map((p) => p.role))).toEqual(new Set(['pod', 'container', 'other']));
  });
});

describe('normalisePodUid', () => {
  it.each([
    { raw: '2c48913c_b29f_11e7_9350_020968147796', want: '2c48913c-b29f-11e7-9350-020968147796' },
    { raw: '2C48913C-B29F-11E7-9350-020968147796', want: '2c48913c-b29f-11e7-9350-020968147796' },
    { raw: '7260904bbd08e72e4dff95d9fccd2ee8', want: '7260904bbd08e72e4dff95d9fccd2ee8' },
  ])('$raw → $want', ({ raw, want }) => {
    expect(normalisePodUid(raw)).toBe(want);
  });
});
