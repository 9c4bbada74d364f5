#include "rds/out_batch.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <climits>

namespace shunt::rds {

OutBatch::OutBatch() {
    headers_.resize(kMaxFrames);
    iov_.reserve(2 * kMaxFrames + 2);
    keep_.reserve(kMaxFrames);
}

void OutBatch::add_borrowed(std::span<const uint8_t> bytes) {
    if (bytes.empty()) return;
    iov_.push_back({const_cast<uint8_t*>(bytes.data()), bytes.size()});
    bytes_ += bytes.size();
}

void OutBatch::add_owned(std::vector<uint8_t> bytes) {
    if (bytes.empty()) return;
    owned_.push_back(std::move(bytes));
    add_borrowed(owned_.back());
}

void OutBatch::add_frame(const Frame& header, std::span<const uint8_t> payload, std::shared_ptr<const std::vector<uint8_t>> keep) {
    auto& h = headers_[frames_++];
    h = encode_header(header);
    add_borrowed(h);
    if (!payload.empty()) {
        add_borrowed(payload);
        keep_.push_back(std::move(keep));
    }
}

void OutBatch::add_frame(const Frame& header, std::vector<uint8_t> payload) {
    auto& h = headers_[frames_++];
    h = encode_header(header);
    add_borrowed(h);
    add_owned(std::move(payload));
}

ssize_t OutBatch::send(int fd, int extra_flags) const {
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov_.data() + at_);
    m.msg_iovlen = std::min<size_t>(iov_.size() - at_, IOV_MAX);
    return ::sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT | extra_flags);
}

void OutBatch::consumed(size_t n) {
    while (n > 0 && at_ < iov_.size()) {
        iovec& v = iov_[at_];
        const size_t take = std::min(n, v.iov_len);
        v.iov_base = static_cast<uint8_t*>(v.iov_base) + take;
        v.iov_len -= take;
        n -= take;
        if (v.iov_len == 0) ++at_;
    }
}

void OutBatch::clear() {
    iov_.clear();
    keep_.clear();
    owned_.clear();
    at_ = frames_ = bytes_ = 0;
}

}  // namespace shunt::rds
