// The comparison point for `shunt rds stress -o`: the same request/response workload over
// libzmq DEALER/ROUTER on one TCP connection per client. A ROUTER answers every request with an
// ack of -a bytes; -t DEALER client threads keep -d requests each in flight and count completed
// round trips. Prints a JSON summary (completed_per_s, mb_per_s, rtt percentiles, cpu_pct,
// cpu_us_per_req: client CPU per completed request).
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <zmq.h>

namespace {

using Clock = std::chrono::steady_clock;

double cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int serve(const std::string& endpoint, size_t ack, int io_threads) {
    void* ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, io_threads);
    void* router = zmq_socket(ctx, ZMQ_ROUTER);
    int hwm = 0;
    zmq_setsockopt(router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(router, endpoint.c_str()) != 0) {
        fmt::print(stderr, "bind {}: {}\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    std::vector<char> reply(ack, 'a');
    while (true) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, router, 0) < 0) break;
        if (zmq_msg_recv(&body, router, 0) < 0) break;
        // Echo the request's first 16 bytes (client id and timestamp) in the ack.
        std::memcpy(reply.data(), zmq_msg_data(&body), std::min<size_t>(16, std::min(ack, zmq_msg_size(&body))));
        zmq_msg_send(&id, router, ZMQ_SNDMORE);
        zmq_send(router, reply.data(), reply.size(), 0);
        zmq_msg_close(&body);
    }
    return 0;
}

int client(const std::string& endpoint, int tasks, int depth, size_t req, double seconds, int io_threads) {
    void* ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, io_threads);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> done{0};
    std::vector<std::vector<uint32_t>> rtts(static_cast<size_t>(tasks));
    std::vector<std::thread> threads;
    for (int t = 0; t < tasks; ++t)
        threads.emplace_back([&, t] {
            void* s = zmq_socket(ctx, ZMQ_DEALER);
            int hwm = 0, linger = 0;
            zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
            zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
            zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
            zmq_connect(s, endpoint.c_str());
            std::vector<char> msg(req, 'q');
            auto send_one = [&] {
                const int64_t now = Clock::now().time_since_epoch().count();
                std::memcpy(msg.data(), &now, 8);
                zmq_send(s, msg.data(), msg.size(), 0);
            };
            for (int d = 0; d < depth; ++d) send_one();
            std::vector<char> buf(std::max<size_t>(req, 1 << 16));
            int timeout = 100;
            zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
            while (!stop) {
                const int n = zmq_recv(s, buf.data(), buf.size(), 0);
                if (n < 8) continue;
                int64_t sent;
                std::memcpy(&sent, buf.data(), 8);
                rtts[static_cast<size_t>(t)].push_back(
                    static_cast<uint32_t>((Clock::now().time_since_epoch().count() - sent) / 1000));
                ++done;
                send_one();
            }
            zmq_close(s);
        });
    const auto start = Clock::now();
    const double cpu0 = cpu_seconds();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const uint64_t completed = done;
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = (cpu_seconds() - cpu0) / secs * 100;
    stop = true;
    for (auto& th : threads) th.join();
    std::vector<uint32_t> all;
    for (auto& v : rtts) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double q) { return all.empty() ? 0u : all[std::min(all.size() - 1, static_cast<size_t>(q * static_cast<double>(all.size())))]; };
    fmt::print("{{\"completed_per_s\": {:.0f}, \"mb_per_s\": {:.1f}, \"rtt_p50_us\": {}, \"rtt_p99_us\": {}, \"cpu_pct\": {:.0f}, "
               "\"cpu_us_per_req\": {:.2f}, \"seconds\": {:.3f}}}\n",
               completed / secs, completed * static_cast<double>(req) / secs / 1e6, pct(0.5), pct(0.99), cpu,
               completed ? cpu / 100 * secs * 1e6 / static_cast<double>(completed) : 0.0, secs);
    zmq_ctx_term(ctx);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"rds_zmq_stress: request/ack over libzmq DEALER/ROUTER, for comparison with shunt rds stress -o"};
    std::string endpoint;
    int tasks = 16, depth = 16, io_threads = 1;
    size_t req = 8192, ack = 256;
    double seconds = 5;
    bool server = false;
    app.add_flag("--server", server, "run the ROUTER side");
    app.add_option("endpoint", endpoint, "tcp://IP:PORT")->required();
    app.add_option("-t", tasks, "client threads (DEALER sockets)");
    app.add_option("-d", depth, "requests in flight per client");
    app.add_option("-q", req, "request bytes");
    app.add_option("-a", ack, "ack bytes");
    app.add_option("-T", seconds, "seconds");
    app.add_option("--io-threads", io_threads, "libzmq I/O threads");
    CLI11_PARSE(app, argc, argv);
    return server ? serve(endpoint, ack, io_threads) : client(endpoint, tasks, depth, req, seconds, io_threads);
}
