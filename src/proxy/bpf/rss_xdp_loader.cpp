// shunt-rss-xdp: loads the emulated RSS NIC (rss_xdp.bpf.c) with libbpf.
//
//   shunt-rss-xdp attach --model FILE --ifname DEV [--ifname DEV...] [--stats FILE]
//       fills the maps from the model (key, RETA, queue -> CPU), attaches in native (driver)
//       mode, prints "ready", and on SIGUSR1 or at SIGINT/SIGTERM writes the per-flow, per-CPU
//       packet counts as JSON to FILE (then, at exit, detaches).
//   shunt-rss-xdp selftest
//       runs the program with BPF_PROG_TEST_RUN on the Microsoft verification packets and
//       compares the hash it computed with the published values. Exit 77 if BPF is unavailable.
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <signal.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "proxy/model.hpp"

#ifndef SHUNT_RSS_XDP_OBJECT
#define SHUNT_RSS_XDP_OBJECT "rss_xdp.bpf.o"
#endif

namespace {

struct RssConf {  // struct rss_conf in rss_xdp.bpf.c
    uint8_t key[16];
    uint32_t reta_mask;
    uint32_t enabled;
};
struct FlowKey {  // struct flow_key
    uint32_t saddr, daddr;
    uint16_t sport, dport;
    uint32_t cpu;
};
constexpr uint32_t kRetaMax = 512;
constexpr uint32_t kCpuMax = 64;

volatile sig_atomic_t g_stop = 0, g_dump = 0;

struct Loaded {
    bpf_object* obj = nullptr;
    int prog = -1;
    ~Loaded() {
        if (obj) bpf_object__close(obj);
    }
    int map(const char* name) const {
        const int fd = bpf_object__find_map_fd_by_name(obj, name);
        if (fd < 0) throw std::runtime_error(fmt::format("map {} missing", name));
        return fd;
    }
};

// Returns false (with errno) if the kernel refuses to load BPF.
bool load(Loaded& l, const std::string& path) {
    l.obj = bpf_object__open_file(path.c_str(), nullptr);
    if (!l.obj) throw std::runtime_error(fmt::format("cannot open {}", path));
    if (bpf_object__load(l.obj) != 0) return false;
    bpf_program* p = bpf_object__find_program_by_name(l.obj, "rss_xdp");
    if (!p) throw std::runtime_error("program rss_xdp missing");
    l.prog = bpf_program__fd(p);
    return true;
}

void set_conf(const Loaded& l, const shunt::rss::ToeplitzKey& key, uint32_t reta_mask, bool redirect) {
    RssConf c{};
    std::memcpy(c.key, key.bytes().data(), sizeof c.key);
    c.reta_mask = reta_mask;
    c.enabled = redirect ? 1 : 0;
    const uint32_t zero = 0;
    if (bpf_map_update_elem(l.map("conf"), &zero, &c, BPF_ANY) != 0)
        throw std::runtime_error("cannot write the configuration map");
}

void dump_flows(const Loaded& l, const std::string& path) {
    const int fd = l.map("flows");
    nlohmann::json flows = nlohmann::json::array();
    FlowKey k{}, next{};
    FlowKey* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        uint64_t n = 0;
        if (bpf_map_lookup_elem(fd, &next, &n) == 0) {
            char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &next.saddr, s, sizeof s);
            inet_ntop(AF_INET, &next.daddr, d, sizeof d);
            flows.push_back({{"saddr", s}, {"daddr", d}, {"sport", ntohs(next.sport)},
                             {"dport", ntohs(next.dport)}, {"cpu", next.cpu}, {"packets", n}});
        }
        k = next;
        prev = &k;
    }
    std::ofstream out(path + ".tmp");
    out << nlohmann::json{{"flows", flows}}.dump() << "\n";
    out.close();
    std::rename((path + ".tmp").c_str(), path.c_str());
}

int attach(const std::string& obj, const std::string& model_path, const std::vector<std::string>& ifnames,
           const std::string& stats, bool redirect) {
    const auto model = shunt::proxy::load_model_file(model_path);
    if (model.nic.reta.size() > kRetaMax) throw std::runtime_error("RETA larger than 512 entries");
    Loaded l;
    if (!load(l, obj)) throw std::runtime_error(fmt::format("cannot load {}: {}", obj, std::strerror(errno)));
    set_conf(l, model.nic.key, model.nic.reta.mask(), redirect);
    const int reta_fd = l.map("reta_cpu");
    const int cpus_fd = l.map("cpus");
    for (uint32_t i = 0; i < model.nic.reta.size(); ++i) {
        const uint32_t cpu = static_cast<uint32_t>(model.queue_cpu.at(model.nic.reta[i]));
        if (cpu >= kCpuMax) throw std::runtime_error("CPU number >= 64 in the model");
        bpf_map_update_elem(reta_fd, &i, &cpu, BPF_ANY);
        bpf_cpumap_val v{};
        v.qsize = 192;
        if (bpf_map_update_elem(cpus_fd, &cpu, &v, BPF_ANY) != 0)
            throw std::runtime_error(fmt::format("cpumap entry for CPU {}: {}", cpu, std::strerror(errno)));
    }
    std::vector<int> attached;
    for (const auto& name : ifnames) {
        const int ifindex = static_cast<int>(if_nametoindex(name.c_str()));
        if (ifindex == 0) throw std::runtime_error(fmt::format("no interface {}", name));
        if (bpf_xdp_attach(ifindex, l.prog, XDP_FLAGS_DRV_MODE, nullptr) != 0)
            throw std::runtime_error(fmt::format("native XDP attach on {}: {}", name, std::strerror(errno)));
        attached.push_back(ifindex);
    }
    struct sigaction sa{};
    sa.sa_handler = [](int sig) {
        if (sig == SIGUSR1) g_dump = 1;
        else g_stop = 1;
    };
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGUSR1, &sa, nullptr);
    std::printf("ready\n");
    std::fflush(stdout);
    while (!g_stop) {
        pause();
        if (g_dump && !stats.empty()) {
            g_dump = 0;
            dump_flows(l, stats);
        }
    }
    if (!stats.empty()) dump_flows(l, stats);
    for (int ifindex : attached) bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr);
    return 0;
}

// An Ethernet + IPv4 + TCP packet with the given addresses and ports.
std::vector<uint8_t> packet(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
    std::vector<uint8_t> p(14 + 20 + 20, 0);
    p[12] = 0x08;  // ETH_P_IP
    uint8_t* ip = p.data() + 14;
    ip[0] = 0x45;
    ip[3] = 40;
    ip[8] = 64;
    ip[9] = 6;  // TCP
    inet_pton(AF_INET, src, ip + 12);
    inet_pton(AF_INET, dst, ip + 16);
    uint8_t* tcp = ip + 20;
    tcp[0] = static_cast<uint8_t>(sport >> 8);
    tcp[1] = static_cast<uint8_t>(sport);
    tcp[2] = static_cast<uint8_t>(dport >> 8);
    tcp[3] = static_cast<uint8_t>(dport);
    tcp[12] = 0x50;
    return p;
}

int selftest(const std::string& obj) {
    Loaded l;
    if (!load(l, obj)) {
        std::printf("SKIP: cannot load BPF: %s\n", std::strerror(errno));
        return 77;
    }
    set_conf(l, shunt::rss::ToeplitzKey::microsoft(), 127, false);
    // Microsoft's RSS verification suite, IPv4 with TCP ports (source -> destination).
    struct V {
        const char* src;
        uint16_t sport;
        const char* dst;
        uint16_t dport;
        uint32_t hash;
    } const vectors[] = {
        {"66.9.149.187", 2794, "161.142.100.80", 1766, 0x51ccc178},
        {"199.92.111.2", 14230, "65.69.140.83", 4739, 0xc626b0ea},
        {"24.19.198.95", 12898, "12.22.207.184", 38024, 0x5c2b394a},
        {"38.27.205.30", 48228, "209.142.163.6", 2217, 0xafc7327f},
        {"153.39.163.191", 44251, "202.188.127.2", 1303, 0x10e828a2},
    };
    int failed = 0;
    for (const auto& v : vectors) {
        auto p = packet(v.src, v.sport, v.dst, v.dport);
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p.data(), .data_size_in = static_cast<uint32_t>(p.size()));
        if (bpf_prog_test_run_opts(l.prog, &opts) != 0) {
            std::printf("SKIP: BPF_PROG_TEST_RUN: %s\n", std::strerror(errno));
            return 77;
        }
        uint32_t zero = 0, got = 0;
        bpf_map_lookup_elem(l.map("last_hash"), &zero, &got);
        const bool ok = got == v.hash && opts.retval == XDP_PASS;
        failed += ok ? 0 : 1;
        std::printf("%s %s:%u -> %s:%u hash 0x%08x want 0x%08x\n", ok ? "ok  " : "FAIL", v.src, v.sport, v.dst,
                    v.dport, got, v.hash);
    }
    return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string obj = SHUNT_RSS_XDP_OBJECT, model, stats;
    std::vector<std::string> ifnames;
    bool redirect = true;
    try {
        if (args.empty()) throw std::runtime_error("usage: shunt-rss-xdp attach|selftest [options]");
        for (size_t i = 1; i < args.size(); ++i) {
            auto value = [&]() -> const std::string& {
                if (i + 1 >= args.size()) throw std::runtime_error(args[i] + " needs a value");
                return args[++i];
            };
            if (args[i] == "--obj") obj = value();
            else if (args[i] == "--model") model = value();
            else if (args[i] == "--ifname") ifnames.push_back(value());
            else if (args[i] == "--stats") stats = value();
            else if (args[i] == "--no-redirect") redirect = false;
            else throw std::runtime_error("unknown option " + args[i]);
        }
        libbpf_set_print(nullptr);
        if (args[0] == "selftest") return selftest(obj);
        if (args[0] == "attach") {
            if (model.empty() || ifnames.empty()) throw std::runtime_error("attach needs --model and --ifname");
            return attach(obj, model, ifnames, stats, redirect);
        }
        throw std::runtime_error("unknown command " + args[0]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "shunt-rss-xdp: %s\n", e.what());
        return 1;
    }
}
