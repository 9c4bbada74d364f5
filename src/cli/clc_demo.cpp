// `shunt clc demo`: a client and a server in one process exchange real CLC messages over TCP
// loopback (Proposal -> Accept -> Confirm), then a second connection is declined and carries on
// as plain TCP. Meant to be captured with tshark to check wire compatibility.
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "clc/builders.hpp"
#include "clc/negotiate.hpp"
#include "clc/transfer.hpp"
#include "cli/commands.hpp"
#include "core/random.hpp"
#include "core/tcp.hpp"
#include "shunt/decline.hpp"

namespace shunt::cli {
namespace {

using namespace shunt::clc;

struct DemoOptions {
    std::string host = "127.0.0.1";
    uint16_t port = 0;
    std::string decline = "NOSMCD2DEV";
    std::string ueid = "SHUNT";
    size_t dmb_size = 64 * 1024;
    bool json = false;
};

// What each side saw, for printing and for the capture test to compare against tshark.
struct DemoRecord {
    Gid128 gid;
    uint64_t server_token = 0;
    uint64_t client_token = 0;
    uint8_t dmbe_size = 0;
    std::string eid;
    size_t proposal_len = 0;
    size_t accept_len = 0;
    uint32_t decline_code = 0;
    std::string fallback_echo;
};

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

template <class T>
T expect(int fd, const char* who) {
    auto got = receive_message(fd);
    if (!got) fail(fmt::format("{}: {}", who, got.error().message()));
    if (const T* m = std::get_if<T>(&*got)) return *m;
    if (const auto* d = std::get_if<Decline>(&*got))
        fail(fmt::format("{}: unexpected Decline {}", who, decline_name(d->diagnosis)));
    fail(fmt::format("{}: unexpected {}", who, to_string(type_of(*got))));
}

Eid hostname_eid() {
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    return pad_blank(name);
}

void run_server(int listen_fd, const LocalIdentity& me, const DemoOptions& opt, uint32_t decline_code,
                DemoRecord& rec) {
    {  // Connection 1: accepted.
        UniqueFd c = tcp_accept(listen_fd);
        const Proposal p = expect<Proposal>(c.get(), "server");
        const auto choice = choose_on_proposal(p, me);
        if (const uint32_t* code = std::get_if<uint32_t>(&choice))
            fail(fmt::format("server would decline: {}", decline_name(*code)));
        const auto& agreed = std::get<ServerChoice>(choice);
        const BufferOffer dmb{random_u64(), compress_dmbe_size(opt.dmb_size)};
        AcceptConfirm accept = loopback_accept(me.gid, agreed.eid, dmb, true, hostname_eid());
        accept.fce.release = agreed.release;
        if (int e = send_message(c.get(), accept)) fail(fmt::format("server send: {}", std::strerror(e)));
        rec.server_token = dmb.dmb_token;
        rec.dmbe_size = dmb.dmbe_size;
        rec.accept_len = encode(accept).size();
        const AcceptConfirm confirm = expect<AcceptConfirm>(c.get(), "server");
        if (uint32_t code = check_confirm(confirm, accept, me))
            fail(fmt::format("server rejects Confirm: {}", decline_name(code)));
    }
    {  // Connection 2: declined, then plain TCP on the same socket.
        UniqueFd c = tcp_accept(listen_fd);
        expect<Proposal>(c.get(), "server");
        if (int e = send_message(c.get(), decline(decline_code)))
            fail(fmt::format("server send: {}", std::strerror(e)));
        char buf[64];
        const ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
        if (n > 0) write_all(c.get(), buf, static_cast<size_t>(n));
    }
}

void run_client(const LocalIdentity& me, const DemoOptions& opt, DemoRecord& rec) {
    const Proposal proposal = loopback_proposal(me.gid, me.ueids);
    rec.proposal_len = encode(proposal).size();
    {
        UniqueFd c = tcp_connect(opt.host, opt.port);
        if (int e = send_message(c.get(), proposal)) fail(fmt::format("client send: {}", std::strerror(e)));
        const AcceptConfirm accept = expect<AcceptConfirm>(c.get(), "client");
        if (uint32_t code = check_accept(accept, me))
            fail(fmt::format("client rejects Accept: {}", decline_name(code)));
        const BufferOffer dmb{random_u64(), accept.dmbe_size};
        AcceptConfirm confirm = loopback_confirm(me.gid, accept.eid, dmb, accept.first_contact, hostname_eid());
        confirm.fce.release = accept.fce.release;
        if (int e = send_message(c.get(), confirm)) fail(fmt::format("client send: {}", std::strerror(e)));
        rec.client_token = dmb.dmb_token;
        rec.eid = trim_blank(accept.eid);
    }
    {
        UniqueFd c = tcp_connect(opt.host, opt.port);
        if (int e = send_message(c.get(), proposal)) fail(fmt::format("client send: {}", std::strerror(e)));
        const Decline d = expect<Decline>(c.get(), "client");
        rec.decline_code = d.diagnosis;
        const std::string payload = "hello over TCP";
        write_all(c.get(), payload.data(), payload.size());
        std::string echo(payload.size(), '\0');
        if (!read_exact(c.get(), echo.data(), echo.size())) fail("client: no echo after fallback");
        rec.fallback_echo = echo;
    }
}

void print(const DemoOptions& opt, const DemoRecord& r) {
    if (opt.json) {
        nlohmann::json j{
            {"port", opt.port},
            {"gid", fmt::format("0x{:016x}", r.gid.hi)},
            {"gid_ext", fmt::format("0x{:016x}", r.gid.lo)},
            {"chid", "0xffff"},
            {"eid", r.eid},
            {"proposal_length", r.proposal_len},
            {"accept_length", r.accept_len},
            {"server_dmb_token", fmt::format("0x{:016x}", r.server_token)},
            {"client_dmb_token", fmt::format("0x{:016x}", r.client_token)},
            {"dmbe_size", r.dmbe_size},
            {"decline_code", fmt::format("0x{:08x}", r.decline_code)},
            {"decline_name", decline_name(r.decline_code)},
            {"fallback_echo", r.fallback_echo},
        };
        fmt::print("{}\n", j.dump(2));
        return;
    }
    fmt::print("CLC demo on {}:{}  host GID {:016x}{:016x}  UEID {}\n", opt.host, opt.port, r.gid.hi,
               r.gid.lo, r.eid);
    fmt::print("conn 1  client -> Proposal  SMC-Dv2, Emulated-ISM CHID 0xffff, {} bytes\n", r.proposal_len);
    fmt::print("        server -> Accept    DMB token {:016x}, {} KiB, first contact, {} bytes\n",
               r.server_token, dmbe_bytes(r.dmbe_size) / 1024, r.accept_len);
    fmt::print("        client -> Confirm   DMB token {:016x}\n", r.client_token);
    fmt::print("        => SMC-D\n");
    fmt::print("conn 2  client -> Proposal\n");
    fmt::print("        server -> Decline   0x{:08x} {}\n", r.decline_code, decline_name(r.decline_code));
    fmt::print("        => TCP fallback on the same socket, echoed \"{}\"\n", r.fallback_echo);
}

void run_demo(const DemoOptions& opt) {
    const auto code = parse_decline(opt.decline);
    if (!code) fail(fmt::format("unknown decline code '{}'", opt.decline));
    Eid ueid;
    if (!make_ueid(opt.ueid, ueid)) fail(fmt::format("invalid UEID '{}' (A-Z 0-9 . -, max 32)", opt.ueid));
    const Eid ueids[] = {ueid};
    const LocalIdentity me{{random_u64(), random_u64()}, ueids};

    DemoRecord rec;
    rec.gid = me.gid;
    UniqueFd listener = tcp_listen(opt.host, opt.port);
    std::exception_ptr server_error;
    std::thread server([&] {
        try {
            run_server(listener.get(), me, opt, *code, rec);
        } catch (...) {
            server_error = std::current_exception();
        }
    });
    std::exception_ptr client_error;
    try {
        run_client(me, opt, rec);
    } catch (...) {
        client_error = std::current_exception();
        ::shutdown(listener.get(), SHUT_RDWR);  // unblock a server still in accept
    }
    server.join();
    if (client_error) std::rethrow_exception(client_error);
    if (server_error) std::rethrow_exception(server_error);
    print(opt, rec);
}

}  // namespace

void add_clc_commands(CLI::App& app) {
    auto* clc = app.add_subcommand("clc", "SMC CLC handshake tools");
    clc->require_subcommand(1);
    auto opt = std::make_shared<DemoOptions>();
    auto* demo = clc->add_subcommand(
        "demo", "Run Proposal -> Accept -> Confirm, then a Declined connection, over TCP loopback");
    demo->add_option("--port,-p", opt->port, "TCP port to use")->required();
    demo->add_option("--host", opt->host, "address to listen on and connect to")->capture_default_str();
    demo->add_option("--decline", opt->decline, "DECL code for the second connection (name or hex)")
        ->capture_default_str();
    demo->add_option("--ueid", opt->ueid, "UEID both sides use")->capture_default_str();
    demo->add_option("--dmb-size", opt->dmb_size, "DMB size offered in the Accept, bytes")->capture_default_str();
    demo->add_flag("--json", opt->json, "print what was exchanged as JSON");
    demo->callback([opt] { run_demo(*opt); });
}

}  // namespace shunt::cli
