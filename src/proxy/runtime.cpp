// Shared proxy state (see runtime.hpp).
#include "proxy/runtime.hpp"

#include <fmt/format.h>

namespace shunt::proxy {

Runtime::Runtime(Config config, std::optional<RssModel> model)
    : config_(std::move(config)), model_(std::move(model)) {
    for (size_t b = 0; b < config_.backends.size(); ++b) {
        backend_servers_.emplace_back();
        for (const auto& sc : config_.backends[b].servers) {
            auto s = std::make_unique<ServerState>();
            s->backend = config_.backends[b].name;
            s->name = sc.name;
            s->configured = sc.address;
            s->set_address(resolve_one(sc.address));
            backend_servers_[b].push_back(servers_.size());
            servers_.push_back(std::move(s));
        }
    }
}

std::string Runtime::model_description() const {
    if (!model_) return "none: backend connections use kernel-chosen ports, not RSS-aligned";
    return fmt::format("{} ({} queues, RETA {}){}", model_->source, model_->nic.reta.queue_count(),
                       model_->nic.reta.size(), config_.align ? "" : ", alignment off");
}

rss::PortAllocator* Runtime::allocator(const rss::IpAddress& local) {
    std::lock_guard lock(alloc_mu_);
    auto& slot = allocators_[local.to_string()];
    if (!slot) {
        rss::PortAllocator::Config c;
        c.model = model_->nic;
        c.local = local;
        c.range = config_.port_range;
        c.excluded = rss::tcp_ports_in_use(local);
        slot = std::make_unique<rss::PortAllocator>(std::move(c));
    }
    return slot.get();
}

std::vector<rss::PortAllocator*> Runtime::allocators_for(const SockAddr& remote) {
    std::vector<rss::PortAllocator*> out;
    const auto family = remote.ip().family();
    for (const auto& s : config_.sources) {
        const auto ip = rss::IpAddress::parse(s);
        if (ip && ip->family() == family) out.push_back(allocator(*ip));
    }
    if (out.empty()) out.push_back(allocator(route_source(remote)));
    return out;
}

std::string Runtime::set_server_address(const std::string& backend, const std::string& server,
                                        const std::string& host_port) {
    const auto hp = parse_host_port(host_port);
    if (!hp) return fmt::format("\"{}\" is not host:port", host_port);
    for (auto& s : servers_) {
        if (s->backend != backend || s->name != server) continue;
        SockAddr a;
        try {
            a = resolve_one(*hp);
            if (aligned()) allocators_for(a);  // create the allocator now, not on a shard
        } catch (const std::exception& e) {
            return e.what();
        }
        s->set_address(a);
        address_generation.fetch_add(1, std::memory_order_release);
        return "";
    }
    return fmt::format("no server {}/{}", backend, server);
}

}  // namespace shunt::proxy
