// libFuzzer target for rds lane input: an arbitrary byte stream, cut into chunks whose sizes the
// input also chooses, through FrameReader, and every Data frame through a Receiver (reassembly,
// duplicate and gap checks) and every Ack through a LaneSender, as a node's lane does. Every
// frame accepted must re-encode to a header that decodes to the same frame, with exactly h_len
// payload bytes; reassembly memory stays bounded; a delivered message has the length its
// fragments announced; acks never free more than was queued; the sender's credit always holds
// the window of the highest window sequence seen, however the acks were ordered.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "rds/credit_window.hpp"
#include "rds/frame_reader.hpp"
#include "rds/lane_sender.hpp"
#include "rds/receiver.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace shunt::rds;
    if (size < 1) return 0;
    const size_t chunk = 1 + data[0] * 7;
    std::span<const uint8_t> stream(data + 1, size - 1);
    FrameReader reader;
    Receiver receiver;
    LaneSender sender;
    // The sender side holds a few messages for pair (4001 -> 4002), so acks have work to do.
    for (uint64_t seq = 1; seq <= 3; ++seq) {
        Message m;
        m.pair = {4001, 4002};
        m.seq = seq;
        m.data = std::make_shared<const std::vector<uint8_t>>(seq * 100, uint8_t{7});
        sender.enqueue(std::move(m));
    }
    while (sender.next_frame()) {
    }
    bool lane_closed = false;
    Credit credit;
    uint64_t best_seq = 0;
    uint32_t best_window = 0;
    auto check = [&](const Frame& f, std::span<const uint8_t> payload) {
        if (payload.size() != f.len) std::abort();
        auto again = decode_header(encode_header(f));
        if (!again || !(*again == f)) std::abort();
        if (lane_closed) return;
        if (f.kind == Kind::Data) {
            ReceiveResult r = receiver.on_data(f, payload);
            if (std::holds_alternative<ReceiveError>(r)) lane_closed = true;  // the node closes the lane
            if (auto* d = std::get_if<Delivered>(&r); d && d->message.size() != f.msg_len) std::abort();
            if (receiver.partial_bytes() > kMaxReassembly) std::abort();
        } else if (f.kind == Kind::Ack) {
            credit.update(f.window, f.window_seq);
            if (f.window_seq > best_seq) {
                best_seq = f.window_seq;
                best_window = f.window;
            }
            if (credit.window_seq != best_seq || (best_seq != 0 && credit.window != best_window)) std::abort();
            const size_t before = sender.queued_bytes();
            LaneSender::Freed freed;
            if (!sender.on_ack({f.dport, f.sport}, f.ack, &freed)) return;
            if (before - sender.queued_bytes() != freed.bytes || freed.bytes > 600) std::abort();
        }
    };
    while (!stream.empty()) {
        const size_t n = std::min(chunk, stream.size());
        if (reader.feed(stream.first(n), check)) break;
        if (reader.pending() > kHeaderLen + kMaxFragment) std::abort();
        stream = stream.subspan(n);
    }
    return 0;
}
