// NIC models from a file or a device (see model.hpp).
#include "proxy/model.hpp"

#include <dirent.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "proxy/config.hpp"

namespace shunt::proxy {

std::vector<uint32_t> RssModel::queues_of_cpu(int cpu) const {
    std::vector<uint32_t> out;
    for (uint32_t q = 0; q < queue_cpu.size(); ++q)
        if (queue_cpu[q] == cpu && !nic.reta.indices_of(q).empty()) out.push_back(q);
    return out;
}

namespace {

[[noreturn]] void fail(const std::string& origin, const toml::node& n, const std::string& what) {
    throw ConfigError(fmt::format("{}:{}:{}: {}", origin, n.source().begin.line,
                                  n.source().begin.column, what));
}

}  // namespace

RssModel parse_model(const std::string& text, const std::string& origin) {
    toml::table root;
    try {
        root = toml::parse(text, origin);
    } catch (const toml::parse_error& e) {
        throw ConfigError(fmt::format("{}:{}:{}: {}", origin, e.source().begin.line,
                                      e.source().begin.column, e.description()));
    }
    RssModel m;
    m.source = "file " + origin;
    for (const auto& [k, v] : root)
        if (k != "key" && k != "reta" && k != "reta_size" && k != "queues" && k != "queue_cpus")
            fail(origin, v, fmt::format("unknown key \"{}\" in the model", k.str()));
    if (const auto* n = root.get("key")) {
        std::optional<rss::ToeplitzKey> key;
        if (n->is_string()) key = rss::ToeplitzKey::parse_hex(*n->value<std::string>());
        if (!key) fail(origin, *n, "key: expected 40..60 bytes of hex (\"6d:5a:...\")");
        m.nic.key = *key;
    }
    try {
        if (const auto* n = root.get("reta")) {
            if (!n->is_array()) fail(origin, *n, "reta: expected an array of queue numbers");
            std::vector<uint32_t> entries;
            for (const auto& e : *n->as_array()) {
                if (!e.is_integer() || *e.value<int64_t>() < 0 || *e.value<int64_t>() > 65535)
                    fail(origin, e, "reta: entries are queue numbers 0..65535");
                entries.push_back(static_cast<uint32_t>(*e.value<int64_t>()));
            }
            m.nic.reta = rss::Reta::from_entries(std::move(entries));
        } else {
            const auto size = root["reta_size"].value_or<int64_t>(128);
            const auto queues = root["queues"].value_or<int64_t>(0);
            if (queues <= 0) throw ConfigError(origin + ": the model needs reta = [...] or queues = N");
            m.nic.reta = rss::Reta::round_robin(static_cast<size_t>(size), static_cast<uint32_t>(queues));
        }
    } catch (const std::invalid_argument& e) {
        throw ConfigError(fmt::format("{}: bad RETA: {}", origin, e.what()));
    }
    if (const auto* n = root.get("queue_cpus")) {
        if (!n->is_array()) fail(origin, *n, "queue_cpus: expected an array of CPU numbers");
        for (const auto& e : *n->as_array()) {
            if (!e.is_integer() || *e.value<int64_t>() < 0 || *e.value<int64_t>() > 4095)
                fail(origin, e, "queue_cpus: entries are CPU numbers");
            m.queue_cpu.push_back(static_cast<int>(*e.value<int64_t>()));
        }
    }
    for (uint32_t q = static_cast<uint32_t>(m.queue_cpu.size()); q < m.nic.reta.queue_count(); ++q)
        m.queue_cpu.push_back(static_cast<int>(q));
    return m;
}

RssModel load_model_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw ConfigError(fmt::format("{}: cannot open the model file", path));
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_model(ss.str(), path);
}

std::string format_model(const RssModel& m) {
    std::string out = fmt::format("key = \"{}\"\nreta = [", m.nic.key.to_hex(':'));
    for (size_t i = 0; i < m.nic.reta.size(); ++i) out += fmt::format("{}{}", i ? "," : "", m.nic.reta[i]);
    out += "]\nqueue_cpus = [";
    for (size_t i = 0; i < m.queue_cpu.size(); ++i) out += fmt::format("{}{}", i ? "," : "", m.queue_cpu[i]);
    return out + "]\n";
}

namespace {

// IRQ numbers of an interface's queues, in queue order: /proc/interrupts lines whose name
// starts with the interface name (eth0-TxRx-3, mlx5_comp3@pci..., ...). Drivers differ; a name
// without a trailing number is skipped.
std::vector<std::pair<int, int>> queue_irqs(const std::string& ifname) {
    std::vector<std::pair<int, int>> out;  // (queue, irq)
    std::ifstream in("/proc/interrupts");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string irq_text;
        ls >> irq_text;
        if (irq_text.empty() || irq_text.back() != ':') continue;
        const auto name_at = line.rfind(' ');
        const std::string name = line.substr(name_at + 1);
        if (name.rfind(ifname + "-", 0) != 0) continue;
        size_t d = name.size();
        while (d > 0 && std::isdigit(static_cast<unsigned char>(name[d - 1]))) --d;
        if (d == name.size()) continue;
        try {
            out.emplace_back(std::stoi(name.substr(d)), std::stoi(irq_text));
        } catch (const std::exception&) {
        }
    }
    return out;
}

}  // namespace

RssModel model_from_nic(const std::string& ifname) {
    const auto info = rss::query_nic(ifname);
    std::string why;
    auto nic = info.model(&why);
    if (!nic) throw std::runtime_error(fmt::format("{}: no usable RSS: {}", ifname, why));
    if (!info.hfunc_is_toeplitz())
        throw std::runtime_error(fmt::format("{}: the RSS hash function is not Toeplitz", ifname));
    if (info.tcp4_fields && !rss::NicRssInfo::ports_hashed(*info.tcp4_fields))
        throw std::runtime_error(fmt::format("{}: TCP/IPv4 RSS does not hash the ports "
                                             "(ethtool -N {} rx-flow-hash tcp4 sdfn)", ifname, ifname));
    RssModel m;
    m.nic = *nic;
    m.source = "nic " + ifname;
    m.queue_cpu.assign(m.nic.reta.queue_count(), -1);
    for (const auto& [q, irq] : queue_irqs(ifname)) {
        if (q < 0 || static_cast<size_t>(q) >= m.queue_cpu.size()) continue;
        std::ifstream aff(fmt::format("/proc/irq/{}/smp_affinity_list", irq));
        std::string list;
        if (aff >> list)
            if (const auto cpus = parse_cpu_list(list); cpus && cpus->size() == 1) m.queue_cpu[q] = cpus->front();
    }
    for (size_t q = 0; q < m.queue_cpu.size(); ++q)
        if (m.queue_cpu[q] < 0)
            throw std::runtime_error(fmt::format(
                "{}: queue {} has no IRQ pinned to a single CPU; pin the queue IRQs "
                "(/proc/irq/N/smp_affinity_list) or give a model file", ifname, q));
    return m;
}

}  // namespace shunt::proxy
