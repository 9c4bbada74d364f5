// An RSS NIC in XDP: Toeplitz hash of each TCP/IPv4 packet, RETA lookup, and a redirect through a
// CPU map to the CPU that serves the chosen queue, as a NIC with one RX queue per CPU and pinned
// queue interrupts would do. Loaded on the veth interfaces of the proxy's namespace by
// shunt-rss-xdp, which fills the maps from a NIC model file.
//
// Hash input (receiver's view): source address, destination address, source port, destination
// port, as they appear in the packet; 12 bytes, so 16 bytes of key are used. Each packet is also
// counted per flow and per CPU it was sent to, so alignment can be measured from the packets'
// side. Non-TCP and fragmented packets are passed unchanged (they stay on the receiving CPU).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define RETA_MAX 512
#define CPU_MAX 64

struct rss_conf {
    __u8 key[16];     // the first 16 key bytes: enough for a 12-byte IPv4 + ports input
    __u32 reta_mask;  // RETA size - 1
    __u32 enabled;    // 0: count only, no redirect
};

struct flow_key {
    __u32 saddr, daddr;  // network order
    __u16 sport, dport;  // network order
    __u32 cpu;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct rss_conf);
} conf SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, RETA_MAX);
    __type(key, __u32);
    __type(value, __u32);  // the CPU of RETA[i]'s queue (the loader resolves queue -> CPU)
} reta_cpu SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_CPUMAP);
    __uint(max_entries, CPU_MAX);
    __type(key, __u32);
    __type(value, struct bpf_cpumap_val);
} cpus SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 262144);
    __type(key, struct flow_key);
    __type(value, __u64);
} flows SEC(".maps");

// The last hash computed (for BPF_PROG_TEST_RUN checks against known vectors).
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} last_hash SEC(".maps");

static __always_inline __u32 toeplitz12(const __u8 *key, const __u8 *in) {
    __u32 result = 0;
    __u32 window = (__u32)key[0] << 24 | (__u32)key[1] << 16 | (__u32)key[2] << 8 | key[3];
#pragma unroll
    for (int i = 0; i < 12; i++) {
        __u8 b = in[i];
        __u8 k = key[i + 4];
#pragma unroll
        for (int j = 0; j < 8; j++) {
            if (b & (0x80 >> j)) result ^= window;
            window = window << 1 | ((k >> (7 - j)) & 1);
        }
    }
    return result;
}

SEC("xdp")
int rss_xdp(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end || ip->ihl < 5 || ip->protocol != IPPROTO_TCP) return XDP_PASS;
    if (ip->frag_off & bpf_htons(0x3fff)) return XDP_PASS;  // a fragment: no ports to hash
    struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
    if ((void *)(tcp + 1) > end) return XDP_PASS;

    __u32 zero = 0;
    struct rss_conf *c = bpf_map_lookup_elem(&conf, &zero);
    if (!c) return XDP_PASS;
    __u8 in[12];
    __builtin_memcpy(in, &ip->saddr, 4);
    __builtin_memcpy(in + 4, &ip->daddr, 4);
    __builtin_memcpy(in + 8, &tcp->source, 2);
    __builtin_memcpy(in + 10, &tcp->dest, 2);
    __u32 hash = toeplitz12(c->key, in);
    bpf_map_update_elem(&last_hash, &zero, &hash, BPF_ANY);

    __u32 index = hash & c->reta_mask & (RETA_MAX - 1);
    __u32 *cpu = bpf_map_lookup_elem(&reta_cpu, &index);
    if (!cpu) return XDP_PASS;
    struct flow_key fk = {.saddr = ip->saddr, .daddr = ip->daddr, .sport = tcp->source,
                          .dport = tcp->dest, .cpu = *cpu};
    __u64 *n = bpf_map_lookup_elem(&flows, &fk);
    if (n) {
        __sync_fetch_and_add(n, 1);
    } else {
        __u64 one = 1;
        bpf_map_update_elem(&flows, &fk, &one, BPF_NOEXIST);
    }
    if (!c->enabled) return XDP_PASS;
    return bpf_redirect_map(&cpus, *cpu, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
